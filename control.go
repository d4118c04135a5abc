package usersessions

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The control socket lets operators act on the sessions of a running app:
// bbolt allows one process per file, so while the app runs, the
// usersessions command cannot open the database itself. An app opts in with
// one line after Open:
//
//	ctl, err := usersessions.ServeControl(store, "")
//	...
//	defer ctl.Close() // before store.Close
//
// and "usersessions ls/revoke/stats/clear-expired/check -db FILE" then reach
// the app through FILE.sock when they find FILE locked.
//
// Security model: the socket is a Unix socket beside the database, mode
// 0600, owned by the app's user. Whoever can connect to it can list and end
// every session, exactly like whoever can open the database file; the file
// system decides who may (the socket's mode and its folder's permissions),
// there is no further authentication. The socket is created in a private
// folder and moved into place, so it is never reachable with a wider mode.
// It offers only what the exported Store API offers: listing, counting,
// deleting, clearing expired sessions, checking, and Store.Backup; no
// operation returns tokens or values, except the backup, which is a copy
// of the whole file: it is served only to a peer running as the app's own
// user or as root (checked with SO_PEERCRED on Linux), who can read the
// database file anyway.

// ControlSocketPath is the control socket of the database at dbPath.
func ControlSocketPath(dbPath string) string { return dbPath + ".sock" }

// Control serves a Store's control socket. Create it with ServeControl.
type Control struct {
	store *Store
	ln    *net.UnixListener
	path  string
	fi    os.FileInfo // the socket file, to remove only ours
	log   *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// controlReadTimeout bounds reading a request; controlWriteTimeout each
// reply line, so a stuck client cannot hold a connection for long.
const (
	controlReadTimeout  = 10 * time.Second
	controlWriteTimeout = 30 * time.Second
	controlMaxRequest   = 64 << 10
)

// ServeControl serves store's control socket at path, "" meaning
// ControlSocketPath(store.Path()), until Close. A stale socket left by a
// process that died is replaced; a live one (another server) or any other
// file at path is an error.
func ServeControl(store *Store, path string) (*Control, error) {
	if path == "" {
		path = ControlSocketPath(store.Path())
	}
	if err := removeStaleControlSocket(path); err != nil {
		return nil, err
	}
	// Bind in a private folder (mode 0700), set the socket's mode, then
	// rename it into place: no moment with a wider mode at path.
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), ".usersessions-sock-")
	if err != nil {
		return nil, fmt.Errorf("usersessions: control socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	c := &Control{store: store, ln: ln, path: path, fi: fi, log: slog.Default(), conns: make(map[net.Conn]struct{})}
	c.wg.Add(1)
	go c.serve()
	return c, nil
}

// removeStaleControlSocket removes a socket at path that nobody listens on.
func removeStaleControlSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("usersessions: control socket %s: a file that is not a socket is in the way", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("usersessions: control socket %s: another process serves it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("usersessions: control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("usersessions: removing stale control socket %s: %w", path, err)
	}
	return nil
}

// Path returns the socket's path.
func (c *Control) Path() string { return c.path }

// Close stops serving, ends open connections, waits for their handlers,
// and removes the socket file if it is still this server's. Closing twice,
// or a nil *Control (a ServeControl that failed), is harmless.
func (c *Control) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	err := c.ln.Close()
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	if fi, serr := os.Lstat(c.path); serr == nil && os.SameFile(fi, c.fi) {
		if rerr := os.Remove(c.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

func (c *Control) serve() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			c.log.Error("usersessions: control socket: accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			conn.Close()
			return
		}
		c.conns[conn] = struct{}{}
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			defer func() {
				c.mu.Lock()
				delete(c.conns, conn)
				c.mu.Unlock()
				conn.Close()
			}()
			c.handle(conn)
		}()
	}
}

// controlRequest is one request: one JSON object, one per connection.
type controlRequest struct {
	Op        string `json:"op"` // info, list, get, delete, delete_user, clear_expired, check, backup
	ID        string `json:"id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	Keep      string `json:"keep,omitempty"`
	State     State  `json:"state,omitempty"`
	Anonymous bool   `json:"anonymous,omitempty"`
	After     string `json:"after,omitempty"`
}

// controlReply is one line of a reply. A list replies with one line per
// session (or unreadable record) and a last line with End set.
type controlReply struct {
	Session  *controlSession `json:"session,omitempty"`
	Info     *ControlInfo    `json:"info,omitempty"`
	N        int             `json:"n,omitempty"`
	Problems []string        `json:"problems,omitempty"`
	Err      string          `json:"error,omitempty"`
	Kind     string          `json:"kind,omitempty"`   // not_found, corrupt, closed, not_supported
	Stream   bool            `json:"stream,omitempty"` // backup: frames follow this line
	Size     int64           `json:"size,omitempty"`   // backup: bytes sent
	End      bool            `json:"end,omitempty"`
}

type controlSession struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ControlInfo describes the store behind a control socket.
type ControlInfo struct {
	Path        string        `json:"path"`         // the database file
	IdleTimeout time.Duration `json:"idle_timeout"` // in force in the app
	Lifetime    time.Duration `json:"lifetime"`
	Count       int           `json:"count"`             // stored sessions, expired ones included
	Stats       Stats         `json:"stats"`             // the app's counters since Open
	Backend     string        `json:"backend,omitempty"` // "bbolt" for a file opened with Open
	File        *ControlFile  `json:"file,omitempty"`    // nil unless the backend is a bbolt file
}

// ControlFile describes the bbolt file behind a control socket, as the app
// that holds it sees it: an operator command cannot read the free pages of
// a file another process holds.
type ControlFile struct {
	Size      int64 `json:"size"`       // the file's size in bytes
	PageSize  int   `json:"page_size"`  // bbolt's page size
	FreeBytes int64 `json:"free_bytes"` // free and pending pages, and the unused tail past the last page
}

// controlFile reports on s's bbolt file, or nil for other backends.
func controlFile(s *Store) *ControlFile {
	b, ok := s.b.(*boltBackend)
	if !ok || b.db == nil {
		return nil
	}
	var f ControlFile
	var used int64
	err := b.db.View(func(tx *bolt.Tx) error {
		used = tx.Size()
		f.PageSize = tx.DB().Info().PageSize
		st := tx.DB().Stats()
		f.FreeBytes = int64(st.FreePageN+st.PendingPageN) * int64(f.PageSize)
		return nil
	})
	if err != nil {
		return nil
	}
	fi, err := os.Stat(b.path)
	if err != nil {
		return nil
	}
	f.Size = fi.Size()
	f.FreeBytes += max(f.Size-used, 0)
	return &f
}

// backendName names s's backend for ControlInfo.
func backendName(s *Store) string {
	if _, ok := s.b.(*boltBackend); ok {
		return "bbolt"
	}
	return fmt.Sprintf("%T", s.b)
}

func controlErrKind(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, ErrNotSupported):
		return "not_supported"
	}
	return ""
}

func (c *Control) handle(conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(controlReadTimeout))
	var req controlRequest
	dec := json.NewDecoder(io.LimitReader(conn, controlMaxRequest))
	enc := json.NewEncoder(conn)
	reply := func(r controlReply) bool {
		conn.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
		return enc.Encode(r) == nil
	}
	fail := func(err error) {
		reply(controlReply{Err: err.Error(), Kind: controlErrKind(err), End: true})
	}
	if err := dec.Decode(&req); err != nil {
		fail(fmt.Errorf("usersessions: control: bad request: %v", err))
		return
	}
	// The handler's context ends when the server closes (Close closes the
	// connection, and writes fail).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := c.store
	switch req.Op {
	case "info":
		n, err := s.Count(ctx)
		if err != nil {
			fail(err)
			return
		}
		reply(controlReply{Info: &ControlInfo{Path: s.Path(), IdleTimeout: s.IdleTimeout(), Lifetime: s.Lifetime(),
			Count: n, Stats: s.Stats(), Backend: backendName(s), File: controlFile(s)}, End: true})
	case "list":
		f := Filter{UserID: req.UserID, Anonymous: req.Anonymous, State: req.State, After: req.After}
		for sess, err := range s.All(ctx, f) {
			var r controlReply
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					fail(err)
					return
				}
				r = controlReply{Err: err.Error(), Kind: controlErrKind(err)}
			} else {
				r.Session = toControlSession(sess)
			}
			if !reply(r) {
				return
			}
		}
		reply(controlReply{End: true})
	case "get":
		sess, err := s.Get(ctx, req.ID)
		if err != nil {
			fail(err)
			return
		}
		reply(controlReply{Session: toControlSession(sess), End: true})
	case "delete":
		if err := s.Delete(ctx, req.ID); err != nil {
			fail(err)
			return
		}
		reply(controlReply{N: 1, End: true})
	case "delete_user":
		n, err := s.DeleteByUser(ctx, req.UserID, req.Keep)
		if err != nil {
			fail(err)
			return
		}
		reply(controlReply{N: n, End: true})
	case "clear_expired":
		n, err := s.ClearExpired(ctx)
		if err != nil {
			fail(err)
			return
		}
		reply(controlReply{N: n, End: true})
	case "check":
		var problems []string
		if err := s.Check(ctx); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				fail(err)
				return
			}
			problems = strings.Split(err.Error(), "\n")
		}
		reply(controlReply{Problems: problems, End: true})
	case "backup":
		c.backup(conn, reply, fail)
	default:
		fail(fmt.Errorf("usersessions: control: unknown op %q", req.Op))
	}
}

// Backup stream: after the request, a reply line with Stream set (or an
// error line with End), then frames of a 4-byte big-endian length and that
// many bytes of the file, a frame of length 0, and a last line with End and
// Size, or with End and Err when the copy failed midway.
const (
	controlFrameSize = 256 << 10
	// controlFrameTimeout bounds writing one frame. Store.Backup streams
	// from a temporary copy, so a slow client holds up no write of the
	// app; a client that stops reading is still cut off soon, since it
	// holds a connection and a copy of the whole file.
	controlFrameTimeout = 10 * time.Second
)

// errNotOwner refuses a backup to a peer that could not read the file.
var errNotOwner = errors.New("usersessions: control: a backup is only served to the app's own user or root")

func (c *Control) backup(conn net.Conn, reply func(controlReply) bool, fail func(error)) {
	if err := checkPeerOwner(conn); err != nil {
		fail(err)
		return
	}
	if _, ok := c.store.b.(io.WriterTo); !ok {
		fail(ErrNotSupported)
		return
	}
	if !reply(controlReply{Stream: true}) {
		return
	}
	fw := &frameWriter{conn: conn, buf: make([]byte, 4, 4+controlFrameSize)}
	n, err := c.store.Backup(fw)
	if err == nil {
		err = fw.flush()
	}
	if err != nil {
		if fw.broken {
			return // the connection is gone: nobody to tell
		}
		// End the frames; the client reads the error line.
		if fw.writeFrame(nil) == nil {
			fail(err)
		}
		return
	}
	if fw.writeFrame(nil) != nil {
		return
	}
	reply(controlReply{Size: n, End: true})
}

// frameWriter cuts what it is given into frames of controlFrameSize.
type frameWriter struct {
	conn   net.Conn
	buf    []byte // 4 bytes for the length, then the data
	broken bool   // a write to conn failed
}

func (f *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), controlFrameSize-(len(f.buf)-4))
		f.buf = append(f.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(f.buf)-4 == controlFrameSize {
			if err := f.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (f *frameWriter) flush() error {
	if len(f.buf) == 4 {
		return nil
	}
	err := f.writeFrame(f.buf[4:])
	f.buf = f.buf[:4]
	return err
}

// writeFrame writes one frame; data nil is the end frame.
func (f *frameWriter) writeFrame(data []byte) error {
	var frame []byte
	if data == nil {
		frame = []byte{0, 0, 0, 0}
	} else {
		frame = f.buf[:4+len(data)]
		binary.BigEndian.PutUint32(frame, uint32(len(data)))
	}
	f.conn.SetWriteDeadline(time.Now().Add(controlFrameTimeout))
	if _, err := f.conn.Write(frame); err != nil {
		f.broken = true
		return err
	}
	return nil
}

func toControlSession(s *Session) *controlSession {
	cs := &controlSession{ID: s.ID, UserID: s.UserID, UserAgent: s.UserAgent,
		CreatedAt: s.CreatedAt, LastSeen: s.LastSeen, ExpiresAt: s.ExpiresAt}
	if s.IP.IsValid() {
		cs.IP = s.IP.String()
	}
	return cs
}

// ---- client ----

// ControlClient talks to a control socket. Its methods mirror the Store's,
// and return the same sentinel errors (ErrNotFound, ErrCorrupt, ErrClosed)
// for errors.Is. Each call is one connection.
type ControlClient struct {
	socket string
	info   ControlInfo
}

// DialControl connects to the control socket at path and asks for the
// store's ControlInfo. It fails with an error wrapping os.ErrNotExist when
// there is no socket, and syscall.ECONNREFUSED when nobody serves it.
func DialControl(ctx context.Context, path string) (*ControlClient, error) {
	c := &ControlClient{socket: path}
	var info *ControlInfo
	err := c.call(ctx, controlRequest{Op: "info"}, func(r controlReply) error {
		info = r.Info
		return nil
	})
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("usersessions: control socket %s: no info in the reply", path)
	}
	c.info = *info
	return c, nil
}

// Info returns what DialControl learned about the store.
func (c *ControlClient) Info() ControlInfo { return c.info }

// Path returns the database file's path, as the app opened it.
func (c *ControlClient) Path() string { return c.info.Path }

// IdleTimeout returns the app's idle timeout.
func (c *ControlClient) IdleTimeout() time.Duration { return c.info.IdleTimeout }

// Stats returns the app's counters as of DialControl.
func (c *ControlClient) Stats() Stats { return c.info.Stats }

// Close releases nothing: every call has its own connection.
func (c *ControlClient) Close() error { return nil }

// call sends req and hands each reply line to fn until the last one.
func (c *ControlClient) call(ctx context.Context, req controlRequest, fn func(controlReply) error) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return fmt.Errorf("usersessions: control socket %s: %w", c.socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return c.connErr(ctx, err)
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r controlReply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("usersessions: control socket %s: bad reply: %v", c.socket, err)
		}
		if r.End && r.Err != "" {
			return controlReplyErr(r)
		}
		if err := fn(r); err != nil {
			return err
		}
		if r.End {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return c.connErr(ctx, err)
	}
	return fmt.Errorf("usersessions: control socket %s: the app closed the connection early", c.socket)
}

func (c *ControlClient) connErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("usersessions: control socket %s: %w", c.socket, err)
}

// controlReplyErr turns an error line back into an error that wraps its sentinel.
func controlReplyErr(r controlReply) error {
	msg := strings.TrimPrefix(r.Err, "usersessions: ")
	switch r.Kind {
	case "not_found":
		return fmt.Errorf("%w (via the control socket: %s)", ErrNotFound, msg)
	case "corrupt":
		return fmt.Errorf("%w: %s", ErrCorrupt, strings.TrimPrefix(msg, "corrupt data: "))
	case "closed":
		return fmt.Errorf("%w (the app is shutting down)", ErrClosed)
	case "not_supported":
		return fmt.Errorf("%w (via the control socket)", ErrNotSupported)
	}
	return errors.New("usersessions: " + msg)
}

// fromControl is the Session a client sees, with the app's idle timeout
// for Deadline and Active.
func (c *ControlClient) fromControl(cs *controlSession) *Session {
	s := &Session{ID: cs.ID, UserID: cs.UserID, UserAgent: cs.UserAgent,
		CreatedAt: cs.CreatedAt, LastSeen: cs.LastSeen, ExpiresAt: cs.ExpiresAt, idle: c.info.IdleTimeout}
	if ip, err := netip.ParseAddr(cs.IP); err == nil {
		s.IP = ip
	}
	return s
}

// All is Store.All through the socket: sessions without tokens or values.
// Filter.IPPrefix and Filter.Search are not sent: they are applied here.
func (c *ControlClient) All(ctx context.Context, f Filter) iter.Seq2[*Session, error] {
	return func(yield func(*Session, error) bool) {
		stopped := errors.New("stopped")
		now := time.Now()
		err := c.call(ctx, controlRequest{Op: "list", UserID: f.UserID, State: f.State, Anonymous: f.Anonymous, After: f.After},
			func(r controlReply) error {
				var ok bool
				switch {
				case r.End:
					return nil
				case r.Session != nil:
					s := c.fromControl(r.Session)
					local := Filter{IPPrefix: f.IPPrefix, Search: f.Search}
					if !local.matches(s, now) {
						return nil
					}
					ok = yield(s, nil)
				default:
					ok = yield(nil, controlReplyErr(r))
				}
				if !ok {
					return stopped
				}
				return nil
			})
		if err != nil && err != stopped {
			yield(nil, err)
		}
	}
}

// Count is Store.Count through the socket.
func (c *ControlClient) Count(ctx context.Context) (int, error) {
	var n int
	err := c.call(ctx, controlRequest{Op: "info"}, func(r controlReply) error {
		if r.Info != nil {
			n = r.Info.Count
		}
		return nil
	})
	return n, err
}

// Get is Store.Get through the socket.
func (c *ControlClient) Get(ctx context.Context, id string) (*Session, error) {
	var s *Session
	err := c.call(ctx, controlRequest{Op: "get", ID: id}, func(r controlReply) error {
		if r.Session != nil {
			s = c.fromControl(r.Session)
		}
		return nil
	})
	if err == nil && s == nil {
		err = ErrNotFound
	}
	return s, err
}

// Delete is Store.Delete through the socket.
func (c *ControlClient) Delete(ctx context.Context, id string) error {
	return c.call(ctx, controlRequest{Op: "delete", ID: id}, func(controlReply) error { return nil })
}

// DeleteByUser is Store.DeleteByUser through the socket.
func (c *ControlClient) DeleteByUser(ctx context.Context, userID, keepID string) (int, error) {
	return c.count(ctx, controlRequest{Op: "delete_user", UserID: userID, Keep: keepID})
}

// ClearExpired is Store.ClearExpired through the socket.
func (c *ControlClient) ClearExpired(ctx context.Context) (int, error) {
	return c.count(ctx, controlRequest{Op: "clear_expired"})
}

func (c *ControlClient) count(ctx context.Context, req controlRequest) (int, error) {
	var n int
	err := c.call(ctx, req, func(r controlReply) error {
		n = r.N
		return nil
	})
	return n, err
}

// Check is Store.Check through the socket: the problems found, joined,
// each wrapping ErrCorrupt.
func (c *ControlClient) Check(ctx context.Context) error {
	var problems []error
	err := c.call(ctx, controlRequest{Op: "check"}, func(r controlReply) error {
		for _, p := range r.Problems {
			problems = append(problems, fmt.Errorf("%w: %s", ErrCorrupt, strings.TrimPrefix(p, ErrCorrupt.Error()+": ")))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(problems...)
}

// Backup is Store.Backup through the socket: it writes a consistent copy of
// the app's database to w and returns the bytes written. The app serves it
// only to its own user or root. A copy cut short (the app stopped, the
// connection broke) is an error, never a silently short copy.
func (c *ControlClient) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return 0, fmt.Errorf("usersessions: control socket %s: %w", c.socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(controlRequest{Op: "backup"}); err != nil {
		return 0, c.connErr(ctx, err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	readLine := func() (controlReply, error) {
		var r controlReply
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return r, fmt.Errorf("usersessions: control socket %s: the app closed the connection early", c.socket)
			}
			return r, c.connErr(ctx, err)
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return r, fmt.Errorf("usersessions: control socket %s: bad reply: %v", c.socket, err)
		}
		return r, nil
	}
	r, err := readLine()
	if err != nil {
		return 0, err
	}
	if r.Err != "" {
		return 0, controlReplyErr(r)
	}
	if !r.Stream {
		return 0, fmt.Errorf("usersessions: control socket %s: the app does not offer backups (an older version?)", c.socket)
	}
	var written int64
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return written, fmt.Errorf("usersessions: control socket %s: the backup was cut short after %d bytes", c.socket, written)
			}
			return written, c.connErr(ctx, err)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 {
			break
		}
		if size > controlFrameSize {
			return written, fmt.Errorf("usersessions: control socket %s: bad backup frame of %d bytes", c.socket, size)
		}
		n, err := io.CopyN(w, br, int64(size))
		written += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				return written, fmt.Errorf("usersessions: control socket %s: the backup was cut short after %d bytes", c.socket, written)
			}
			if ctx.Err() != nil {
				return written, ctx.Err()
			}
			return written, err // the writer's error, or the connection's
		}
	}
	r, err = readLine()
	if err != nil {
		return written, err
	}
	if r.Err != "" {
		return written, controlReplyErr(r)
	}
	if !r.End || r.Size != written {
		return written, fmt.Errorf("usersessions: control socket %s: the app sent %d bytes but reports %d", c.socket, written, r.Size)
	}
	return written, nil
}
