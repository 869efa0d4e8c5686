package hostdriver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"nvidiaprep/nvidiaprep/driverrun"
)

// partName is the download in progress of a version's .run: hidden and not
// ending in .run, so the cache never mistakes it for a package. It stays
// after a network failure, so that the next try (or the next boot) resumes.
func partName(version string) string { return "." + driverrun.RunFileName(version) + ".part" }

// Download defaults.
const (
	defaultAttempts = 4
	defaultBackoff  = time.Second
	stallTimeout    = 60 * time.Second // no byte for this long ends an attempt
)

// defaultClient fails fast on a dead network and waits patiently for a
// slow but live download.
func defaultClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true, // a Range must count bytes of the file itself
	}}
}

// fetcher puts the configured .run into the cache.
type fetcher struct {
	cache    driverrun.Cache
	version  string
	source   string // [driver] run: a path, a URL or ""
	sha256   string // [driver] sha256, "" for unchecked
	client   *http.Client
	attempts int
	backoff  time.Duration
	log      func(format string, args ...any)
}

// fetch makes sure the cache holds a verified .run of the version and
// returns its path. A cached file that fails the check is fetched again.
// A new file is written to a temporary name beside its final one, verified
// (sha256 and the version in its header), then renamed into place: a failed
// fetch leaves no .run behind, only a partial download to resume.
func (f fetcher) fetch(ctx context.Context) (string, error) {
	final := filepath.Join(f.cache.RunsDir(), driverrun.RunFileName(f.version))
	if _, err := os.Stat(final); err == nil {
		if err := f.check(final); err == nil {
			return final, nil
		} else if f.source == "" {
			return "", err
		} else {
			f.log("the cached %s is not usable (%v); fetching it again", final, err)
			if err := os.Remove(final); err != nil {
				return "", fmt.Errorf("removing the damaged %s: %w", final, err)
			}
		}
	}
	if f.source == "" {
		// An admin may have put it there under another name.
		p, err := f.cache.FindRun(f.version)
		if err != nil {
			return "", fmt.Errorf("%w; or set [driver] run to NVIDIA's download URL or a local path", err)
		}
		if err := f.check(p); err != nil {
			return "", err
		}
		return p, nil
	}
	if err := os.MkdirAll(f.cache.RunsDir(), 0o755); err != nil {
		return "", fmt.Errorf("driver cache: %w", err)
	}
	part := filepath.Join(f.cache.RunsDir(), partName(f.version))
	resumed, err := f.get(ctx, part)
	if err != nil {
		if st, serr := os.Stat(part); serr == nil && st.Size() == 0 {
			os.Remove(part) // keep only a piece worth resuming
		}
		return "", err
	}
	if err := f.check(part); err != nil && resumed {
		// The piece kept from an earlier try may belong to another file.
		f.log("the resumed download does not verify (%v); downloading %s again from the start", err, f.source)
		if err := os.Remove(part); err != nil {
			return "", fmt.Errorf("driver cache: %w", err)
		}
		if _, err := f.get(ctx, part); err != nil {
			return "", err
		}
	}
	if err := f.check(part); err != nil {
		os.Remove(part)
		return "", err
	}
	if err := os.Rename(part, final); err != nil {
		os.Remove(part)
		return "", fmt.Errorf("driver cache: %w", err)
	}
	syncDir(f.cache.RunsDir())
	return final, nil
}

// get copies or downloads the source into part; resumed tells whether an
// earlier partial download was continued.
func (f fetcher) get(ctx context.Context, part string) (resumed bool, err error) {
	if filepath.IsAbs(f.source) {
		return false, copyFile(f.source, part)
	}
	return f.download(ctx, part)
}

// check verifies a .run: the pinned sha256, then the version in its header.
func (f fetcher) check(path string) error {
	if f.sha256 != "" {
		sum, err := driverrun.SHA256(path)
		if err != nil {
			return err
		}
		if !strings.EqualFold(sum, f.sha256) {
			what := path
			if f.source != "" && !strings.HasSuffix(path, ".part") {
				what = path + " (from " + f.source + ")"
			} else if f.source != "" {
				what = f.source
			}
			return fmt.Errorf("%s has sha256 %s, but [driver] sha256 pins %s: it is damaged or not the configured driver, and is not used; fix [driver] run or sha256", what, sum, f.sha256)
		}
	}
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("driver cache: %w", err)
	}
	defer file.Close()
	h, err := driverrun.ReadHeader(file)
	if err != nil {
		return fmt.Errorf("%s (from %s): %w", path, f.sourceName(), err)
	}
	if h.Version != f.version {
		return fmt.Errorf("%s (from %s) is driver %s, but [driver] version is %s: fix [driver] run or version", path, f.sourceName(), h.Version, f.version)
	}
	return nil
}

func (f fetcher) sourceName() string {
	if f.source == "" {
		return "the cache"
	}
	return f.source
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("[driver] run: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("driver cache: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return fmt.Errorf("copying %s into the driver cache: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("driver cache: %w", err)
	}
	return out.Close()
}

// download fetches the URL into part, continuing what part already holds
// with a Range request, and retrying failed attempts with a doubling pause.
// Answers that no retry can change (404, 403, ...) end it at once.
func (f fetcher) download(ctx context.Context, part string) (resumed bool, err error) {
	wait := f.backoff
	var last error
	for attempt := 1; attempt <= f.attempts; attempt++ {
		if attempt > 1 {
			f.log("download attempt %d of %d failed: %v; trying again in %v", attempt-1, f.attempts, last, wait)
			select {
			case <-ctx.Done():
				return resumed, fmt.Errorf("downloading %s: %w", f.source, ctx.Err())
			case <-time.After(wait):
			}
			wait *= 2
		}
		r, permanent, err := f.downloadOnce(ctx, part)
		resumed = resumed || r
		if err == nil {
			return resumed, nil
		}
		last = err
		if permanent || ctx.Err() != nil {
			return resumed, fmt.Errorf("downloading %s: %w", f.source, err)
		}
	}
	return resumed, fmt.Errorf("downloading %s failed %d times, last: %w; check the URL and the node's network (and proxy), or download it yourself and set [driver] run to its path", f.source, f.attempts, last)
}

// downloadOnce makes one request. permanent says a retry cannot help.
func (f fetcher) downloadOnce(ctx context.Context, part string) (resumed, permanent bool, err error) {
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		return false, true, fmt.Errorf("driver cache: %w", err)
	}
	defer out.Close()
	have, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return false, true, fmt.Errorf("driver cache: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.source, nil)
	if err != nil {
		return false, true, err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusPartialContent && have > 0:
		if start := rangeStart(resp.Header.Get("Content-Range")); start != have {
			out.Truncate(0) // an answer we cannot splice: start over next time
			return false, false, fmt.Errorf("asked to resume at byte %d, got Content-Range %q", have, resp.Header.Get("Content-Range"))
		}
		resumed = true
		f.log("resuming the download of %s at byte %d", f.source, have)
	case code == http.StatusOK:
		if have > 0 { // the server does not resume: start over
			if err := out.Truncate(0); err != nil {
				return false, true, fmt.Errorf("driver cache: %w", err)
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return false, true, fmt.Errorf("driver cache: %w", err)
			}
		}
	case code == http.StatusRequestedRangeNotSatisfiable:
		out.Truncate(0)
		return false, false, fmt.Errorf("HTTP %s for the range from byte %d", resp.Status, have)
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return false, false, fmt.Errorf("HTTP %s", resp.Status)
	default:
		return false, true, fmt.Errorf("HTTP %s", resp.Status)
	}
	body := &stallReader{r: resp.Body, cancel: cancel}
	body.arm()
	defer body.stop()
	if _, err := io.Copy(out, body); err != nil {
		if body.stalled() {
			err = fmt.Errorf("no data for %v", stallTimeout)
		}
		return resumed, false, err
	}
	if err := out.Sync(); err != nil {
		return resumed, true, fmt.Errorf("driver cache: %w", err)
	}
	return resumed, false, nil
}

// rangeStart reads the first byte position of "bytes 100-199/200"; -1 when
// it cannot.
func rangeStart(cr string) int64 {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return -1
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// stallReader cancels the request when no byte arrives for stallTimeout.
type stallReader struct {
	r      io.Reader
	cancel context.CancelFunc
	mu     sync.Mutex
	timer  *time.Timer
	fired  bool
}

func (s *stallReader) arm() {
	s.timer = time.AfterFunc(stallTimeout, func() {
		s.mu.Lock()
		s.fired = true
		s.mu.Unlock()
		s.cancel()
	})
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(stallTimeout)
	}
	return n, err
}

func (s *stallReader) stop() { s.timer.Stop() }

func (s *stallReader) stalled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fired
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
