// Command go-echo is net/http with the standard ServeMux and one handler at
// "/", answering {"path": r.URL.Path}: the decoded path the mux routed on.
// The mux's own redirects (it cleans dot segments and "//" with a 301) are
// left as they are. Usage: go-echo [port].
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
)

var stdout sync.Mutex

func main() {
	port := 0
	if len(os.Args) > 1 {
		p, err := strconv.Atoi(os.Args[1])
		if err != nil {
			log.Fatalf("bad port %q", os.Args[1])
		}
		port = p
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		seen, _ := json.Marshal(map[string]string{"host": r.Host, "path": r.URL.Path})
		stdout.Lock()
		fmt.Println(string(seen))
		stdout.Unlock()
		body, _ := json.Marshal(map[string]string{"path": r.URL.Path})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	log.Fatal(http.Serve(ln, mux))
}
