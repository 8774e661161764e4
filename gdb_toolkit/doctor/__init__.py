"""toolkit doctor: what each capability needs, and whether this machine has it."""
