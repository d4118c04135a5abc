package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"

	"github.com/usersessions/usersessions"
)

// Client talks to a control socket. Its methods mirror the Store's and
// return the same errors for errors.Is (usersessions.ErrNotFound,
// ErrCorrupt, ErrClosed...); each call ends with its context. Create one
// with Dial; it is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
	info   Info
}

// maxReply bounds a JSON reply (not a listing, which is read line by line,
// nor a backup).
const maxReply = 16 << 20

// Dial connects to the control socket at path and asks for the store's
// Info. It fails with an error wrapping os.ErrNotExist when there is no
// socket, and syscall.ECONNREFUSED when nobody serves it.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c := &Client{socket: path, hc: &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			},
			DisableCompression:  true,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     idleTimeout / 2, // before the server closes them
		},
		// The server never redirects; a redirect is an error, not a
		// second request with another method.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	info, err := c.fetchInfo(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.info = info
	return c, nil
}

// Info returns what Dial learned about the store.
func (c *Client) Info() Info { return c.info }

// Close closes the client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// do sends a request without a body and returns the reply when its status
// is 200, else the error it carries.
func (c *Client) do(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	target := "http://usersessions" + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("usersessions: control socket %s: %w", c.socket, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.connErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var rep errorReply
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		if json.Unmarshal(body, &rep) != nil || rep.Error == "" && rep.Code == "" {
			return nil, fmt.Errorf("usersessions: control socket %s: %s %s: %s (%.200q)", c.socket, method, path, resp.Status, body)
		}
		return nil, errorOf(rep)
	}
	return resp, nil
}

// call sends a request and decodes its JSON reply into out.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, out any) error {
	resp, err := c.do(ctx, method, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReply)).Decode(out); err != nil {
		return c.replyErr(ctx, err)
	}
	return nil
}

// connErr is the error of a request that got no reply.
func (c *Client) connErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err // the method and URL say nothing here
	}
	return fmt.Errorf("usersessions: control socket %s: %w", c.socket, err)
}

// replyErr is the error of a reply that could not be read to its end.
func (c *Client) replyErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("usersessions: control socket %s: the reply was cut short (did the app stop?)", c.socket)
	}
	return fmt.Errorf("usersessions: control socket %s: bad reply: %w", c.socket, err)
}

func (c *Client) fetchInfo(ctx context.Context) (Info, error) {
	var info Info
	err := c.call(ctx, http.MethodGet, "/v1/info", nil, &info)
	return info, err
}

// Stats returns the app's counters now.
func (c *Client) Stats(ctx context.Context) (usersessions.Stats, error) {
	info, err := c.fetchInfo(ctx)
	return info.Stats, err
}

// Count is Store.Count through the socket.
func (c *Client) Count(ctx context.Context) (int, error) {
	info, err := c.fetchInfo(ctx)
	return info.Count, err
}

// listLine is a line of a listing: a session, or an error.
type listLine struct {
	Session
	errorReply
}

// All is Store.All through the socket, streamed: every field of the filter
// applies, in the app. A record that cannot be read is an error wrapping
// usersessions.ErrCorrupt, and the listing goes on if the loop does.
// Breaking out of the loop ends the request.
func (c *Client) All(ctx context.Context, f usersessions.Filter) iter.Seq2[*Session, error] {
	return func(yield func(*Session, error) bool) {
		q, err := listQuery(f, 0)
		if err != nil {
			yield(nil, err)
			return
		}
		resp, err := c.do(ctx, http.MethodGet, "/v1/sessions", q)
		if err != nil {
			yield(nil, err)
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var line listLine
			switch err := dec.Decode(&line); {
			case errors.Is(err, io.EOF):
				return
			case err != nil:
				yield(nil, c.replyErr(ctx, err))
				return
			case line.Error != "" || line.Code != "":
				if !yield(nil, errorOf(line.errorReply)) {
					return
				}
			default:
				if !yield(&line.Session, nil) {
					return
				}
			}
		}
	}
}

// Get is Store.Get through the socket.
func (c *Client) Get(ctx context.Context, id string) (*Session, error) {
	if id == "" {
		return nil, usersessions.ErrNotFound // as Store.Get; no path names it
	}
	var s Session
	if err := c.call(ctx, http.MethodGet, "/v1/sessions/"+segment(id), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// End is Store.End through the socket: usersessions.ErrNotFound when there
// was no session id.
func (c *Client) End(ctx context.Context, id string, o usersessions.EndOptions) error {
	if id == "" {
		return usersessions.ErrNotFound // as Store.End; no path names it
	}
	q, err := endQuery(o, "")
	if err != nil {
		return err
	}
	var rep endReply
	return c.call(ctx, http.MethodDelete, "/v1/sessions/"+segment(id), q, &rep)
}

// EndUser is Store.EndUser through the socket: it ends every session of
// userID but keepID ("" keeps none) and returns how many it ended.
func (c *Client) EndUser(ctx context.Context, userID, keepID string, o usersessions.EndOptions) (int, error) {
	if userID == "" {
		return 0, nil // as Store.EndUser: no user, nothing to end
	}
	q, err := endQuery(o, keepID)
	if err != nil {
		return 0, err
	}
	var rep endReply
	err = c.call(ctx, http.MethodDelete, "/v1/users/"+segment(userID)+"/sessions", q, &rep)
	return rep.Ended, err
}

// ClearExpired is Store.ClearExpired through the socket.
func (c *Client) ClearExpired(ctx context.Context) (int, error) {
	var rep clearReply
	err := c.call(ctx, http.MethodPost, "/v1/clear-expired", nil, &rep)
	return rep.Removed, err
}

// Check is Store.Check through the socket: the problems found, joined,
// each wrapping usersessions.ErrCorrupt.
func (c *Client) Check(ctx context.Context) error {
	var rep checkReply
	if err := c.call(ctx, http.MethodGet, "/v1/check", nil, &rep); err != nil {
		return err
	}
	var problems []error
	for _, p := range rep.Problems {
		problems = append(problems, errorOf(errorReply{Error: p, Code: "corrupt"}))
	}
	if !rep.OK && len(problems) == 0 {
		problems = append(problems, errorOf(errorReply{Error: "usersessions: corrupt data: the app's check failed", Code: "corrupt"}))
	}
	return errors.Join(problems...)
}
