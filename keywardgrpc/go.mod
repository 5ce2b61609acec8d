module github.com/keyward/keyward/keywardgrpc

go 1.25.0

require (
	github.com/google/uuid v1.6.0
	github.com/keyward/keyward v0.0.0
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260706201446-f0a921348800
	google.golang.org/grpc v1.84.0
	google.golang.org/protobuf v1.36.11
)

require (
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)

replace github.com/keyward/keyward => ../
