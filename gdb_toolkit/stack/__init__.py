"""stack-diagnose: why the stack could not grow, who asked for it, and what fixes it."""
