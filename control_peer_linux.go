//go:build linux

package usersessions

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeerOwner refuses a peer that runs neither as this process's user
// nor as root.
func checkPeerOwner(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return errNotOwner
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("usersessions: control: peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("usersessions: control: peer credentials: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("usersessions: control: peer credentials: %w", cerr)
	}
	if cred.Uid != uint32(os.Getuid()) && cred.Uid != 0 {
		return fmt.Errorf("%w (the peer runs as uid %d)", errNotOwner, cred.Uid)
	}
	return nil
}
