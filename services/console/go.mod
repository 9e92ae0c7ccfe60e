module github.com/eventstream/eventstream/services/console

go 1.26.0

require github.com/eventstream/eventstream/pkg v0.0.0

require (
	github.com/google/uuid v1.6.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/eventstream/eventstream/pkg => ../../pkg
