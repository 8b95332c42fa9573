// Go HTTPS (crypto/tls: no OpenSSL, not probed by the agent's OpenSSL
// uprobes) for the TLS tests, two roles, each its own process:
//
//	https server CERT KEY
//	  answers GET /items with a fixed JSON body, and GET /small and /large
//	  with the bodies of the benchmarks' Node target (bench/targets/
//	  http-server.ts: bench/bpf-cost.ts loads this server as its go-https
//	  arm, same routes, same bytes); 404 otherwise. Prints {"pid","port"}
//	  once listening and serves until killed.
//	https client URL N CAFILE
//	  prints {"pid"}, waits for a line on stdin (the agent is attached by
//	  then), makes N GET requests to URL, each on a new connection (so the
//	  connections made are exactly N), trusting CAFILE; prints
//	  {"statuses","bodies"} and exits.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
)

const items = `{"items":["a","b","c"]}`

// The benchmark routes' bodies, byte for byte those of bench/targets/http-server.ts.
var benchBodies = map[string][]byte{
	"/small": []byte(`{"ok":true,"service":"bench","items":[1,2,3],"note":"a small response of about 100 bytes"}`),
	"/large": bytes.Repeat([]byte("x"), 16*1024),
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "server":
		if len(os.Args) != 4 {
			usage()
		}
		server(os.Args[2], os.Args[3])
	case "client":
		if len(os.Args) != 5 {
			usage()
		}
		n, err := strconv.Atoi(os.Args[3])
		check(err)
		client(os.Args[2], n, os.Args[4])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: https server CERT KEY | client URL N CAFILE")
	os.Exit(2)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func printJSON(v interface{}) {
	b, err := json.Marshal(v)
	check(err)
	fmt.Println(string(b))
}

func server(certFile, keyFile string) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/items" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, items)
			return
		}
		if body, ok := benchBodies[r.URL.Path]; ok && r.Method == http.MethodGet {
			// Content-Length as the Node target sends it (Go would chunk /large).
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
			return
		}
		http.NotFound(w, r)
	})
	// HTTP/1.1 only: the plaintext the later Go probes will see is then what
	// the HTTP/1 parser reads.
	srv := &http.Server{Handler: mux, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	printJSON(map[string]int{"pid": os.Getpid(), "port": ln.Addr().(*net.TCPAddr).Port})
	check(srv.ServeTLS(ln, "", ""))
}

func client(url string, n int, caFile string) {
	pem, err := os.ReadFile(caFile)
	check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		check(fmt.Errorf("no certificate in %s", caFile))
	}
	printJSON(map[string]int{"pid": os.Getpid()})
	bufio.NewReader(os.Stdin).ReadString('\n')
	statuses := []int{}
	bodies := []string{}
	for i := 0; i < n; i++ {
		transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: transport}).Get(url)
		check(err)
		body, err := io.ReadAll(resp.Body)
		check(err)
		resp.Body.Close()
		transport.CloseIdleConnections()
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(body))
	}
	printJSON(map[string]interface{}{"statuses": statuses, "bodies": bodies})
}
