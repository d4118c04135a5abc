package control

import (
	"context"
	"fmt"
	"net"
	"os"
)

// peer is who is at the other end of a connection, as the kernel tells
// (peerOf, per system). Its zero value is refused.
type peer struct {
	uid       uint32
	known     bool  // uid was read
	err       error // reading it failed
	unchecked bool  // this system gives no peer credentials: the socket's mode decides
}

// peerKey is the context key of a connection's peer.
type peerKey struct{}

// withPeer is the server's ConnContext: it reads the peer's credentials
// once per connection, for allowed to check on every request.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

// allowed returns nil when the peer of ctx's connection may use the
// socket: it runs as the socket's owner (this process's user) or as root.
func allowed(ctx context.Context) error {
	p, _ := ctx.Value(peerKey{}).(peer)
	switch {
	case p.unchecked:
		return nil
	case p.err != nil:
		return fmt.Errorf("%w (its credentials cannot be read: %v)", ErrForbidden, p.err)
	case !p.known:
		return fmt.Errorf("%w (no credentials for the connection)", ErrForbidden)
	case p.uid == 0 || p.uid == uint32(os.Geteuid()):
		return nil
	}
	return fmt.Errorf("%w (the peer runs as uid %d)", ErrForbidden, p.uid)
}
