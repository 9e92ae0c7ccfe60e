module github.com/eventstream/eventstream/services/eventstream

go 1.26.0

require github.com/eventstream/eventstream/pkg v0.0.0

replace github.com/eventstream/eventstream/pkg => ../../pkg
