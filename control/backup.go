package control

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// A backup is the file's bytes in a chunked reply, then trailers: the
// size sent, or the error that cut the copy short.
const (
	trailerSize  = "X-Usersessions-Size"
	trailerError = "X-Usersessions-Error"
	trailerCode  = "X-Usersessions-Error-Code"
)

// backup streams Store.Backup, which copies the file into a private
// temporary file first and streams from there: a client that reads slowly
// holds up no write of the app, and one that stops reading is cut off by
// the write deadline.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if !noParams(w, r) {
		return
	}
	bw := &backupWriter{w: w}
	n, err := s.store.Backup(bw)
	switch {
	case bw.err != nil:
		// The client is gone, or stopped reading: nobody to tell.
	case err != nil && !bw.started:
		writeError(w, err) // nothing sent yet: a plain error reply
	case err != nil:
		rep, _ := replyOf(err)
		w.Header().Set(trailerError, rep.Error)
		w.Header().Set(trailerCode, rep.Code)
	default:
		bw.start()
		w.Header().Set(trailerSize, strconv.FormatInt(n, 10))
	}
}

// backupWriter sends the reply's status and headers with the first bytes
// of the copy, so an error before them still gets its own status.
type backupWriter struct {
	w       http.ResponseWriter
	started bool
	err     error // a write to the client failed
}

func (b *backupWriter) Write(p []byte) (int, error) {
	b.start()
	n, err := b.w.Write(p)
	if err != nil {
		b.err = err
	}
	return n, err
}

// start sends the status and headers, once. Declaring the trailers makes
// the reply chunked, however short.
func (b *backupWriter) start() {
	if b.started {
		return
	}
	b.started = true
	h := b.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Trailer", trailerSize+", "+trailerError+", "+trailerCode)
	b.w.WriteHeader(http.StatusOK)
}

// Backup is Store.Backup through the socket: it writes a consistent copy of
// the app's database to w and returns the bytes written. The copy is
// served only to the app's own user or root. A copy cut short (the app
// stopped, the connection broke) is an error, never a silently short copy;
// an error of w ends the copy with that error.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	cw := &countingWriter{w: w}
	if _, err := io.Copy(cw, resp.Body); err != nil {
		if cw.err != nil {
			return cw.n, cw.err // the writer's own error
		}
		if ctx.Err() != nil {
			return cw.n, ctx.Err()
		}
		return cw.n, fmt.Errorf("usersessions: control socket %s: the backup was cut short after %d bytes: %v", c.socket, cw.n, err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return cw.n, errorOf(errorReply{Error: msg, Code: resp.Trailer.Get(trailerCode)})
	}
	size, err := strconv.ParseInt(resp.Trailer.Get(trailerSize), 10, 64)
	switch {
	case err != nil:
		return cw.n, fmt.Errorf("usersessions: control socket %s: the backup was cut short after %d bytes (the app did not confirm its size)", c.socket, cw.n)
	case size != cw.n:
		return cw.n, fmt.Errorf("usersessions: control socket %s: the app sent %d bytes but reports %d", c.socket, cw.n, size)
	}
	return cw.n, nil
}

// countingWriter counts what reaches w, and keeps w's error apart from
// the connection's.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}
