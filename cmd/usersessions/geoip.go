package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/geoupdate"
)

// licenseKeyEnv names the environment variable read when -key is not given.
// It is the better way to pass the key: command lines are visible to every
// user of the machine (ps).
const licenseKeyEnv = "MAXMIND_LICENSE_KEY"

func cmdGeoIP(args []string, stdout, stderr io.Writer) error {
	const synopsis = "geoip download [-key KEY] [-edition NAME] [-dir DIR]"
	if len(args) == 0 || args[0] != "download" {
		usage := func() { fmt.Fprintf(stderr, "Usage:\n  usersessions %s\n", synopsis) }
		switch {
		case len(args) == 0:
			return &usageError{usage: usage, msg: "geoip needs a subcommand"}
		case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
			usage()
			return errHelp
		default:
			return &usageError{usage: usage, msg: fmt.Sprintf("unknown geoip subcommand %q", args[0])}
		}
	}
	return cmdGeoIPDownload(args[1:], stdout, stderr)
}

func cmdGeoIPDownload(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("geoip download", "geoip download [-key KEY] [-edition NAME] [-dir DIR]", `
Downloads a MaxMind GeoIP database with geoupdate.Download: the edition's archive
and its published SHA-256, checked against each other, the .mmdb extracted,
verified and renamed over the old one. Prints the installed file's path.
A free GeoLite2 license key comes with a MaxMind account; pass it in
`+licenseKeyEnv+` rather than -key, which other users can see in ps.`, stderr)
	key := fs.String("key", "", "MaxMind license `key` (default $"+licenseKeyEnv+")")
	edition := fs.String("edition", "GeoLite2-City", "MaxMind edition `ID`")
	dir := fs.String("dir", cacheDir(), "`directory` to install EDITION.mmdb into")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this `duration`")
	baseURL := fs.String("base-url", geoupdate.DefaultURL, "download endpoint (for mirrors and tests)")
	hideFlags(fs, "base-url")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" {
		*key = os.Getenv(licenseKeyEnv)
	}
	if *key == "" {
		return usagef(fs, "a license key is needed: set %s or pass -key", licenseKeyEnv)
	}
	if *timeout <= 0 {
		return usagef(fs, "-timeout must be positive")
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	progress, finish := downloadProgress(stderr)
	file, err := geoupdate.Download(ctx, *key, *edition, *dir, &geoupdate.Options{
		BaseURL:    *baseURL,
		HTTPClient: downloadClient(),
		Progress:   progress,
	})
	finish()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w (gave up after -timeout %v)", err, *timeout)
		}
		return err
	}
	// Download checks that the file is a MaxMind DB; the views need a
	// City or Country one.
	if geo, err := usersessions.OpenGeo(file, nil); err != nil {
		fmt.Fprintf(stderr, "usersessions: warning: %v: -geoip needs a City or Country edition\n", err)
	} else {
		geo.Close()
	}
	fmt.Fprintln(stdout, file)
	return nil
}

// downloadProgress draws geoip download's progress bar on stderr: progress
// is geoupdate's callback, finish ends the bar once Download returns.
func downloadProgress(stderr io.Writer) (progress func(done, total int64), finish func()) {
	bar := newProgress(stderr, "downloading", 0, true)
	var ticker chan struct{}
	if bar != nil {
		// Redraw while no bytes arrive, and while the file is checked
		// after the last one.
		ticker = make(chan struct{})
		go func() {
			t := time.NewTicker(progressInterval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					bar.Tick()
				case <-ticker:
					return
				}
			}
		}()
	}
	progress = func(done, total int64) {
		if total > 0 {
			bar.SetTotal(total)
		}
		if total > 0 && done >= total {
			bar.SetLabel("checking")
		}
		bar.Set(done)
	}
	finish = func() {
		if ticker != nil {
			close(ticker)
		}
		bar.Done()
	}
	return progress, finish
}

// downloadClient bounds the slow parts of a download that the overall
// timeout would only catch late: connecting and waiting for headers.
func downloadClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 30 * time.Second
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}
