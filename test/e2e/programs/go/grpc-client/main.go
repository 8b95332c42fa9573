// A gRPC client on a third HTTP/2 stack (grpc-go: its own framer and
// golang.org/x/net/http2/hpack encoder) for the gRPC tests, calling
// grpc_node.js's server (service test.echo.Echo, ../../grpc/echo.proto):
//
//	grpc-client HOST:PORT
//
// prints {"pid"}, waits for a line on stdin (the agent is attached by then),
// makes calls (below) one after the other on one connection, prints
// {"results"} (each call's status code and the number of messages it got
// back) and exits. Messages are encoded here (a few proto3 fields) and
// passed as bytes, so no generated code is needed; built with Debian's
// golang-google-grpc-dev (GO111MODULE=off GOPATH=/usr/share/gocode), offline.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

// rawCodec passes messages as the bytes given (registered as "proto", the
// content-subtype gRPC peers expect: the wire is the same).
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(d []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), d...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// msg encodes test.echo.Msg's text (1), count (3) and fail_code (4), zero fields left out.
func msg(text string, count, failCode byte) []byte {
	var out []byte
	if text != "" {
		out = append(out, 0x0a, byte(len(text)))
		out = append(out, text...)
	}
	if count != 0 {
		out = append(out, 0x18, count)
	}
	if failCode != 0 {
		out = append(out, 0x20, failCode)
	}
	return out
}

type result struct {
	Code     int `json:"code"`
	Messages int `json:"messages"`
}

func unary(conn *grpc.ClientConn, req []byte) result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp []byte
	if err := conn.Invoke(ctx, "/test.echo.Echo/Unary", &req, &resp); err != nil {
		return result{int(status.Code(err)), 0}
	}
	return result{0, 1}
}

func serverStream(conn *grpc.ClientConn, req []byte) result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desc := &grpc.StreamDesc{StreamName: "ServerStream", ServerStreams: true}
	s, err := conn.NewStream(ctx, desc, "/test.echo.Echo/ServerStream")
	if err != nil {
		return result{int(status.Code(err)), 0}
	}
	if err := s.SendMsg(&req); err != nil {
		return result{int(status.Code(err)), 0}
	}
	if err := s.CloseSend(); err != nil {
		return result{int(status.Code(err)), 0}
	}
	n := 0
	for {
		var resp []byte
		err := s.RecvMsg(&resp)
		if err == io.EOF {
			return result{0, n}
		}
		if err != nil {
			return result{int(status.Code(err)), n}
		}
		n++
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: grpc-client HOST:PORT")
		os.Exit(2)
	}
	encoding.RegisterCodec(rawCodec{})
	fmt.Printf("{\"pid\":%d}\n", os.Getpid())
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		panic(err)
	}
	conn, err := grpc.Dial(os.Args[1], grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		panic(err)
	}
	results := []result{
		unary(conn, msg("g0", 0, 0)),
		unary(conn, msg("g1", 0, 0)),
		unary(conn, msg("missing", 0, 5)),
		serverStream(conn, msg("s", 2, 0)),
	}
	conn.Close()
	out, _ := json.Marshal(map[string]interface{}{"results": results})
	fmt.Println(string(out))
}
