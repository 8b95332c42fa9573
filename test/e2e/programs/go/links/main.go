// Go net/http links test program (test/e2e/go-links.ebpf.test.ts), standard
// library only. Two roles:
//
//	links frontend <backend port>: GET /r/<id> calls the backend's /b/<id>
//	  with a keep-alive http.Client (up to 3 attempts: a 503 or a broken
//	  connection is retried); ids whose number ends in 5 call it instead
//	  over a fresh net.Conn written on the handler's own goroutine. A
//	  background goroutine calls /b/bg<n> every 2 ms through the same
//	  client: it reuses connections the handlers used, and is no request's child.
//	  /r/w<n> answers at once (a driver opening its connections).
//	links backend: GET /b/<id> answers 200, except on a first attempt of
//	  ids ending in 3 (503) and of ids 7, 27, 47... (connection closed
//	  without an answer).
//
// With LINKS_TLS_CERT and LINKS_TLS_KEY (PEM files) both roles serve HTTPS
// (HTTP/1.1: no h2 offered) and the frontend calls the backend over HTTPS
// (any certificate accepted). Prints {"pid","port"} once listening. Ids: t000123.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func number(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "t"))
	if err != nil {
		return -1
	}
	return n
}

func listen(h http.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	out, _ := json.Marshal(map[string]int{"pid": os.Getpid(), "port": ln.Addr().(*net.TCPAddr).Port})
	fmt.Println(string(out))
	if secure() {
		srv := &http.Server{Handler: h, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		panic(srv.ServeTLS(ln, os.Getenv("LINKS_TLS_CERT"), os.Getenv("LINKS_TLS_KEY")))
	}
	panic(http.Serve(ln, h))
}

func secure() bool { return os.Getenv("LINKS_TLS_CERT") != "" }

// The test's own certificates: the client accepts any.
var clientTLS = &tls.Config{InsecureSkipVerify: true}

func backend() {
	var mu sync.Mutex
	attempts := map[string]int{}
	listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/b/")
		mu.Lock()
		attempts[id]++
		first := attempts[id] == 1
		mu.Unlock()
		n := number(id)
		if first && n%10 == 3 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		if first && n%20 == 7 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, id)
	}))
}

func frontend(port string) {
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true, TLSClientConfig: clientTLS},
		Timeout:   10 * time.Second,
	}
	base := "http://127.0.0.1:" + port
	if secure() {
		base = "https://127.0.0.1:" + port
	}
	go func() {
		if os.Getenv("LINKS_BACKGROUND") == "0" {
			return // a benchmark's quiet frontend
		}
		for i := 0; ; i++ {
			time.Sleep(2 * time.Millisecond)
			viaClient(client, fmt.Sprintf("%s/b/bg%06d", base, i))
		}
	}()
	listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/r/")
		if strings.HasPrefix(id, "w") {
			// A driver opening its connections (driver.js warm): no backend call.
			w.Write([]byte("{}"))
			return
		}
		for try := 1; try <= 3; try++ {
			var body []byte
			var err error
			if number(id)%10 == 5 {
				body, err = raw(port, "/b/"+id)
			} else {
				body, err = viaClient(client, base+"/b/"+id)
			}
			if err == nil {
				w.Header().Set("Content-Type", "application/json")
				w.Write(body)
				return
			}
		}
		http.Error(w, "backend failed", http.StatusBadGateway)
	}))
}

func viaClient(client *http.Client, url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return body, err
}

// raw makes one request over a connection of its own, written on the calling goroutine (as database/sql drivers do).
func raw(port, path string) ([]byte, error) {
	var conn net.Conn
	var err error
	if secure() {
		conn, err = tls.Dial("tcp", "127.0.0.1:"+port, clientTLS)
	} else {
		conn, err = net.Dial("tcp", "127.0.0.1:"+port)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n", path); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return body, err
}

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "frontend" {
		frontend(os.Args[2])
	} else if len(os.Args) >= 2 && os.Args[1] == "backend" {
		backend()
	} else {
		fmt.Fprintln(os.Stderr, "usage: links frontend <backend port> | links backend")
		os.Exit(2)
	}
}
