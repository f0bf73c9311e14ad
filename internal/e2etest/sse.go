package e2etest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one Server-Sent Event as an EventSource would dispatch it: its
// id field (or "" when it had none) and its data, lines joined with "\n".
type Event struct {
	ID   string
	Data string
}

// SSEClient reads a Server-Sent Events stream over a real HTTP request.
type SSEClient struct {
	Resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
	// Retry is the last retry: field seen, in milliseconds (0 if none).
	Retry string
}

// DialSSE sends GET url with header h and returns the stream, or the
// response when the status is not 200 (the body read and closed).
func DialSSE(ctx context.Context, url string, h http.Header) (*SSEClient, *http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		resp.Header.Set("X-Test-Body", string(b[:n]))
		return nil, resp, nil
	}
	return &SSEClient{Resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}, resp, nil
}

// ConnectSSE is DialSSE that fails the test unless the answer is 200; the
// stream is closed when the test ends.
func ConnectSSE(t testing.TB, url string, h http.Header) *SSEClient {
	t.Helper()
	ctx, cancel := Context(t)
	defer cancel()
	c, resp, err := DialSSE(context.WithoutCancel(ctx), url, h)
	if err != nil {
		t.Fatalf("e2etest: SSE %s: %v", url, err)
	}
	if c == nil {
		t.Fatalf("e2etest: SSE %s: status %d: %s", url, resp.StatusCode, resp.Header.Get("X-Test-Body"))
	}
	t.Cleanup(c.Close)
	return c
}

// Close ends the stream.
func (c *SSEClient) Close() {
	c.cancel()
	_ = c.Resp.Body.Close()
}

// NextEvent returns the next event (comments and retry fields are
// skipped), or an error when the stream ends or ctx is done.
func (c *SSEClient) NextEvent(ctx context.Context) (Event, error) {
	type result struct {
		ev  Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := c.read()
		done <- result{ev, err}
	}()
	select {
	case r := <-done:
		return r.ev, r.err
	case <-ctx.Done():
		c.Close()
		<-done
		return Event{}, ctx.Err()
	}
}

func (c *SSEClient) read() (Event, error) {
	var ev Event
	var data []string
	have := false
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return Event{}, fmt.Errorf("e2etest: SSE stream: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if have {
				ev.Data = strings.Join(data, "\n")
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			ev.ID = value
		case "data":
			data = append(data, value)
			have = true
		case "retry":
			c.Retry = value
		}
	}
}

// Next returns the next event, failing the test after Wait.
func (c *SSEClient) Next(t testing.TB) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), Wait)
	defer cancel()
	ev, err := c.NextEvent(ctx)
	if err != nil {
		t.Fatalf("e2etest: SSE event: %v", err)
	}
	return ev
}

// ExpectQuietSSE fails the test if an event arrives within a short while.
func (c *SSEClient) ExpectQuiet(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if ev, err := c.NextEvent(ctx); err == nil {
		t.Fatalf("e2etest: unexpected SSE event %+v", ev)
	}
}
