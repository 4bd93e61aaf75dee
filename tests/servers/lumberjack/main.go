// lumberjack-server: a Logstash "beats" input stand-in for Quarry's shipper tests.
//
// It speaks lumberjack v2 through Elastic's reference library (github.com/elastic/go-lumber),
// writes every received event as one JSON line, and ACKs a batch only after all of its events
// were written (and flushed), which mirrors Logstash's "ACK once accepted" backpressure.
//
// Output switching (one output file per test while the server runs for the whole session):
// on SIGHUP the server reads a new output path from the -control file, switches to it between
// batches, and creates it; a test waits for the new file to exist before sending.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	v2 "github.com/elastic/go-lumber/server/v2"
)

type sink struct {
	mu   sync.Mutex
	path string
	f    *os.File
	w    *bufio.Writer
}

func (s *sink) open(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.w.Flush()
		s.f.Close()
	}
	s.path, s.f, s.w = path, f, bufio.NewWriterSize(f, 1<<16)
	return nil
}

func (s *sink) write(events []interface{}) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := json.NewEncoder(s.w)
	enc.SetEscapeHTML(false)
	for _, ev := range events {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 = pick a free port)")
	out := flag.String("out", "events.jsonl", "initial output file (JSON lines)")
	control := flag.String("control", "", "file holding the next output path, read on SIGHUP")
	portFile := flag.String("port-file", "", "write the bound port here once listening")
	flag.Parse()

	s := &sink{}
	if err := s.open(*out); err != nil {
		log.Fatalf("open output: %v", err)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	srv, err := v2.NewWithListener(l)
	if err != nil {
		log.Fatalf("lumberjack server: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if *portFile != "" {
		tmp := *portFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", port)), 0o644); err == nil {
			os.Rename(tmp, *portFile)
		}
	}
	log.Printf("lumberjack v2 server listening on %s, writing %s", l.Addr(), *out)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				log.Printf("got %v, stopping", sig)
				srv.Close()
				s.mu.Lock()
				s.w.Flush()
				s.f.Close()
				os.Exit(0)
			}
			if *control == "" {
				continue
			}
			b, err := os.ReadFile(*control)
			if err != nil {
				log.Printf("read control file: %v", err)
				continue
			}
			p := strings.TrimSpace(string(b))
			if p == "" {
				continue
			}
			if err := s.open(p); err != nil {
				log.Printf("switch output to %s: %v", p, err)
				continue
			}
			log.Printf("output switched to %s", p)
		}
	}()

	var total uint64
	for batch := range srv.ReceiveChan() {
		if err := s.write(batch.Events); err != nil {
			log.Printf("write failed, batch not acknowledged: %v", err)
			continue
		}
		batch.ACK()
		total += uint64(len(batch.Events))
	}
	log.Printf("receive channel closed after %d events", total)
}
