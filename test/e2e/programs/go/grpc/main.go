// gRPC over cleartext HTTP/2 with grpc-go (Debian's golang-google-grpc-dev:
// its own HTTP/2 framing over golang.org/x/net/http2 and its HPACK encoder)
// for the gRPC peer tests. Service test.echo.Echo of ../../grpc/echo.proto,
// called and served with raw bytes (no generated code: a codec that passes
// []byte through, messages encoded by hand). Built in GOPATH mode
// (GO111MODULE=off, GOPATH=/usr/share/gocode:...), offline. Two roles:
//
//	grpc server
//	  listens on 127.0.0.1:0; prints {"pid","port"}, then one line per call
//	  it answered: {"path","code","requests","responses"} (message sizes in
//	  bytes) and serves until killed. Unary: fails with fail_code ("failed
//	  on purpose") when non-zero, else echoes the request's bytes.
//	  ServerStream sends `count` messages {text: TEXT-i}. Every answer carries
//	  trailing metadata x-peer, as grpc_node.js's do.
//	grpc client HOST:PORT
//	  prints {"pid"}, waits for a line on stdin (the agent is attached by
//	  then), makes the peer calls on one connection (see calls), prints
//	  {"results"}, one {"path","code","details","requests","responses"} per
//	  call, and exits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const service = "test.echo.Echo"

// rawCodec sends and receives messages as the bytes they are (*[]byte).
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T is not *[]byte", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T is not *[]byte", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string   { return "proto" } // what the content-type says: application/grpc+proto
func (rawCodec) String() string { return "proto" }

// msg is test.echo.Msg's fields that the peers use.
type msg struct {
	text     string
	count    uint64
	failCode uint64
}

func appendVarint(b []byte, n uint64) []byte {
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// encode writes the fields that are set (proto3: zero values are not sent).
func (m msg) encode() []byte {
	var b []byte
	if m.text != "" {
		b = append(b, 0x0a)
		b = appendVarint(b, uint64(len(m.text)))
		b = append(b, m.text...)
	}
	if m.count != 0 {
		b = appendVarint(append(b, 0x18), m.count)
	}
	if m.failCode != 0 {
		b = appendVarint(append(b, 0x20), m.failCode)
	}
	return b
}

func decode(b []byte) (msg, error) {
	var m msg
	varint := func() (uint64, error) {
		var n uint64
		for shift := uint(0); len(b) > 0; shift += 7 {
			c := b[0]
			b = b[1:]
			n |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return n, nil
			}
		}
		return 0, errors.New("truncated varint")
	}
	for len(b) > 0 {
		key, err := varint()
		if err != nil {
			return m, err
		}
		switch key & 7 {
		case 0:
			v, err := varint()
			if err != nil {
				return m, err
			}
			switch key >> 3 {
			case 3:
				m.count = v
			case 4:
				m.failCode = v
			}
		case 2:
			n, err := varint()
			if err != nil || n > uint64(len(b)) {
				return m, errors.New("bad length")
			}
			if key>>3 == 1 {
				m.text = string(b[:n])
			}
			b = b[n:]
		default:
			return m, fmt.Errorf("unexpected wire type %d", key&7)
		}
	}
	return m, nil
}

type report struct {
	Path      string `json:"path"`
	Code      int    `json:"code"`
	Details   string `json:"details"`
	Requests  []int  `json:"requests"`
	Responses []int  `json:"responses"`
}

var printMu sync.Mutex

func printJSON(v interface{}) {
	b, _ := json.Marshal(v)
	printMu.Lock()
	defer printMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func peerTrailer(ctx context.Context) metadata.MD {
	p, _ := peer.FromContext(ctx)
	return metadata.Pairs("x-peer", p.Addr.String())
}

func unaryHandler(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var req []byte
	if err := dec(&req); err != nil {
		return nil, err
	}
	grpc.SetTrailer(ctx, peerTrailer(ctx))
	m, err := decode(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if m.failCode != 0 {
		printJSON(report{Path: "/" + service + "/Unary", Code: int(m.failCode), Requests: []int{len(req)}, Responses: []int{}})
		return nil, status.Error(codes.Code(m.failCode), "failed on purpose")
	}
	printJSON(report{Path: "/" + service + "/Unary", Code: 0, Requests: []int{len(req)}, Responses: []int{len(req)}})
	return &req, nil
}

func serverStreamHandler(_ interface{}, stream grpc.ServerStream) error {
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	stream.SetTrailer(peerTrailer(stream.Context()))
	m, err := decode(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	sent := []int{}
	for i := uint64(0); i < m.count; i++ {
		out := msg{text: fmt.Sprintf("%s-%d", m.text, i)}.encode()
		if err := stream.SendMsg(&out); err != nil {
			return err
		}
		sent = append(sent, len(out))
	}
	printJSON(report{Path: "/" + service + "/ServerStream", Code: 0, Requests: []int{len(req)}, Responses: sent})
	return nil
}

func serve() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s := grpc.NewServer(grpc.CustomCodec(rawCodec{}))
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*interface{})(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Unary", Handler: unaryHandler}},
		Streams:     []grpc.StreamDesc{{StreamName: "ServerStream", Handler: serverStreamHandler, ServerStreams: true}},
	}, struct{}{})
	printJSON(map[string]int{"pid": os.Getpid(), "port": lis.Addr().(*net.TCPAddr).Port})
	return s.Serve(lis)
}

// The calls the client makes, one after the other.
var calls = []struct {
	method string
	req    msg
}{
	{"Unary", msg{text: "ok"}},
	{"Unary", msg{text: "missing", failCode: uint64(codes.NotFound)}},
	{"ServerStream", msg{text: "s", count: 3}},
}

func call(conn *grpc.ClientConn, method string, req []byte) report {
	r := report{Path: "/" + service + "/" + method, Requests: []int{len(req)}, Responses: []int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if method == "Unary" {
		var resp []byte
		if err = conn.Invoke(ctx, r.Path, &req, &resp); err == nil {
			r.Responses = append(r.Responses, len(resp))
		}
	} else {
		var stream grpc.ClientStream
		stream, err = conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, r.Path)
		if err == nil {
			err = stream.SendMsg(&req)
		}
		if err == nil {
			err = stream.CloseSend()
		}
		for err == nil {
			var resp []byte
			if err = stream.RecvMsg(&resp); err == nil {
				r.Responses = append(r.Responses, len(resp))
			}
		}
		if err == io.EOF {
			err = nil
		}
	}
	st := status.Convert(err)
	r.Code, r.Details = int(st.Code()), st.Message()
	return r
}

func runClient(target string) error {
	printJSON(map[string]int{"pid": os.Getpid()})
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	conn, err := grpc.Dial(target, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return err
	}
	defer conn.Close()
	results := []report{}
	for _, c := range calls {
		results = append(results, call(conn, c.method, c.req.encode()))
	}
	printJSON(map[string][]report{"results": results})
	return nil
}

func main() {
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == "server":
		err = serve()
	case len(os.Args) == 3 && os.Args[1] == "client":
		err = runClient(os.Args[2])
	default:
		err = errors.New("usage: grpc server | client HOST:PORT")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
