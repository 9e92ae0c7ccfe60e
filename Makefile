# Event Stream — the front door. See README.md.
SHELL := /bin/bash
GO ?= go
PKGS := ./pkg/... ./services/...

.PHONY: test
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
