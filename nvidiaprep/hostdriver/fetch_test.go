package hostdriver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/driverrun"
)

// server serves a .run on 127.0.0.1 the way a mirror does, and can break
// the first answers half way.
type server struct {
	*httptest.Server
	data        []byte
	mu          sync.Mutex
	breakFirst  int  // cut this many answers off after half their body
	ignoreRange bool // answer every request with the whole file
	ranges      []string
	requests    int
	status      int // answer every request with this status when not 0
}

func newServer(t *testing.T, data []byte) *server {
	s := &server{data: data}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	cut := s.breakFirst > 0
	if cut {
		s.breakFirst--
	}
	status, ignore := s.status, s.ignoreRange
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	body, start := s.data, 0
	if rg := r.Header.Get("Range"); rg != "" && !ignore {
		fmt.Sscanf(rg, "bytes=%d-", &start)
		body = s.data[start:]
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.data)-1, len(s.data)))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	}
	if !cut {
		w.Write(body)
		return
	}
	w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func testFetcher(t *testing.T, source, sum string) (fetcher, *bytes.Buffer) {
	var log bytes.Buffer
	return fetcher{cache: driverrun.Cache{Dir: t.TempDir()}, version: verWant, source: source, sha256: sum,
		client: defaultClient(), attempts: 3, backoff: time.Millisecond,
		log: func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }}, &log
}

func wantCached(t *testing.T, f fetcher, path string, data []byte) {
	t.Helper()
	if path != filepath.Join(f.cache.RunsDir(), driverrun.RunFileName(verWant)) {
		t.Errorf("path %s", path)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached file differs (%d bytes, want %d): %v", len(got), len(data), err)
	}
	entries, _ := os.ReadDir(f.cache.RunsDir())
	if len(entries) != 1 {
		t.Errorf("runs/ holds %v", entries)
	}
}

func TestDownloadResumesWithRange(t *testing.T) {
	run := standinRun(t, verWant)
	data, _ := os.ReadFile(run)
	s := newServer(t, data)
	s.breakFirst = 1
	f, log := testFetcher(t, s.URL+"/"+driverrun.RunFileName(verWant), sha(t, run))
	path, err := f.fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantCached(t, f, path, data)
	if len(s.ranges) != 2 || s.ranges[0] != "" || s.ranges[1] != fmt.Sprintf("bytes=%d-", len(data)/2) {
		t.Errorf("Range headers %q", s.ranges)
	}
	if !strings.Contains(log.String(), "resuming") {
		t.Errorf("log:\n%s", log)
	}
}

// A server that cannot resume sends the whole file again.
func TestDownloadStartsOverWithoutRange(t *testing.T) {
	run := standinRun(t, verWant)
	data, _ := os.ReadFile(run)
	s := newServer(t, data)
	s.breakFirst, s.ignoreRange = 1, true
	f, _ := testFetcher(t, s.URL+"/x.run", sha(t, run))
	path, err := f.fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantCached(t, f, path, data)
}

// A partial download left by an earlier run (a reboot in the middle) is
// continued, not started over.
func TestDownloadResumesAcrossRuns(t *testing.T) {
	run := standinRun(t, verWant)
	data, _ := os.ReadFile(run)
	s := newServer(t, data)
	s.breakFirst = 10
	f, _ := testFetcher(t, s.URL+"/x.run", sha(t, run))
	f.attempts = 1
	if _, err := f.fetch(context.Background()); err == nil {
		t.Fatal("a broken download succeeded")
	}
	s.breakFirst = 0
	path, err := f.fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantCached(t, f, path, data)
	if last := s.ranges[len(s.ranges)-1]; last == "" {
		t.Errorf("the second run started over: %q", s.ranges)
	}
}

func TestUnreachableURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/NVIDIA.run"
	l.Close() // nothing listens there now
	f, _ := testFetcher(t, url, "")
	_, err = f.fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "failed 3 times") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error: %v", err)
	}
	if entries, _ := os.ReadDir(f.cache.RunsDir()); len(entries) != 0 {
		t.Errorf("left in the cache: %v", entries)
	}
}

func TestNotFoundIsNotRetried(t *testing.T) {
	s := newServer(t, nil)
	s.status = http.StatusNotFound
	f, _ := testFetcher(t, s.URL+"/NVIDIA.run", "")
	_, err := f.fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") || !strings.Contains(err.Error(), s.URL+"/NVIDIA.run") {
		t.Fatalf("error: %v", err)
	}
	if s.requests != 1 {
		t.Errorf("%d requests for a 404", s.requests)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	s := newServer(t, nil)
	s.status = http.StatusServiceUnavailable
	f, _ := testFetcher(t, s.URL+"/NVIDIA.run", "")
	if _, err := f.fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error: %v", err)
	}
	if s.requests != 3 {
		t.Errorf("%d requests, want 3", s.requests)
	}
}

// A download that does not match the pinned sha256 leaves nothing behind.
func TestDownloadMismatchLeavesNothing(t *testing.T) {
	run := standinRun(t, verWant)
	data, _ := os.ReadFile(run)
	s := newServer(t, data)
	pinned := strings.Repeat("ab", 32)
	f, _ := testFetcher(t, s.URL+"/x.run", pinned)
	_, err := f.fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), pinned) || !strings.Contains(err.Error(), s.URL+"/x.run") {
		t.Fatalf("error: %v", err)
	}
	if entries, _ := os.ReadDir(f.cache.RunsDir()); len(entries) != 0 {
		t.Errorf("left in the cache: %v", entries)
	}
}

// A damaged cached file is replaced.
func TestDamagedCacheIsFetchedAgain(t *testing.T) {
	run := standinRun(t, verWant)
	data, _ := os.ReadFile(run)
	s := newServer(t, data)
	f, log := testFetcher(t, s.URL+"/x.run", sha(t, run))
	os.MkdirAll(f.cache.RunsDir(), 0o755)
	final := filepath.Join(f.cache.RunsDir(), driverrun.RunFileName(verWant))
	os.WriteFile(final, data[:100], 0o755)
	path, err := f.fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantCached(t, f, path, data)
	if !strings.Contains(log.String(), "not usable") {
		t.Errorf("log:\n%s", log)
	}
}

// Run with the whole Options: the download goes through Options.HTTP
// and the state says where it failed.
func TestRunDownloadFailureNamesTheURL(t *testing.T) {
	n := debianNode(t)
	s := newServer(t, nil)
	s.status = http.StatusForbidden
	n.cfg.Driver.Run = s.URL + "/NVIDIA-Linux-x86_64-" + verWant + ".run"
	_, err := Run(context.Background(), Options{Config: n.cfg, Runner: n.runner, Log: zerolog.Nop(),
		KernelRelease: release, HTTP: s.Client(), DownloadBackoff: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "step 1/6") || !strings.Contains(err.Error(), n.cfg.Driver.Run) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("error: %v", err)
	}
	if len(n.runner.calls) != 0 {
		t.Errorf("ran %v", n.runner.calls)
	}
}
