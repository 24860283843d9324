package main

import (
	"os"
	"os/signal"
	"syscall"
)

// interrupted returns a channel that receives SIGINT and SIGTERM.
func interrupted() <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	return c
}
