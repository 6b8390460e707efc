package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// cmdHealthcheck asks the server on this machine whether it is ready
// (GET /readyz on the address it listens on) and exits 0 only if so: the
// image's HEALTHCHECK, for an image with no shell or curl.
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", env("NEXUS_LISTEN", "127.0.0.1:8080"), "the server's listen address [NEXUS_LISTEN]")
	useTLS := fs.Bool("tls", env("NEXUS_TLS_CERT", "") != "", "the server serves HTTPS (default: when NEXUS_TLS_CERT is set)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{msg: "usage: nexus healthcheck [--listen ADDR] [--tls] [--timeout D]"}
	}
	u := probeURL(*listen, *useTLS)
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		// The probe reaches this machine's own server over loopback, where
		// the certificate's names (the public ones) never match.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", u, resp.Status)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// probeURL is /readyz of a server listening on listen, reached over
// loopback when it listens on every address.
func probeURL(listen string, useTLS bool) string {
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return scheme + "://" + listen + "/readyz"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz"
}
