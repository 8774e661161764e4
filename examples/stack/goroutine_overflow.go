// goroutine_overflow: an unbounded recursion in Go.  Go grows goroutine stacks itself (on
// its heap, by copying) up to runtime/debug.SetMaxStack: the runtime stops it with
// "goroutine stack exceeds 1000000000-byte limit" -- RLIMIT_STACK plays no part.
package main

import "fmt"

var depth int

func rec(n int) int {
	var a [16]int
	a[n%16] = n
	depth = n
	return rec(n+1) + a[(n+3)%16]
}

func main() { fmt.Println(rec(0)) }
