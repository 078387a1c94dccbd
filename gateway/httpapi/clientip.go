package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the caller's address for the policy (DESIGN §6): the peer,
// or, when the peer is a trusted proxy, the right-most X-Forwarded-For
// entry that is not itself a trusted proxy. X-Real-IP and Forwarded change
// nothing, and neither does X-Forwarded-For from a peer that is not trusted.
func (s *Server) clientIP(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return ""
	}
	if !s.trusted(peer) {
		return peer.String()
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				// A malformed entry ends what can be believed: the last
				// trusted hop is the client as far as the gateway knows.
				return client.String()
			}
			client = a.Unmap()
			if !s.trusted(client) {
				return client.String()
			}
		}
	}
	return client.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the address of a RemoteAddr ("1.2.3.4:5678", "[::1]:80").
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
