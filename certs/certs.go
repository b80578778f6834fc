// Package certs makes the server's TLS material when none is given: a local
// certificate authority and a server certificate it signs, created once under
// the data directory and reused afterwards.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Paths are the files of a local CA and server certificate.
type Paths struct {
	CACert, CAKey, Cert, Key string
}

// In returns the paths under dir.
func In(dir string) Paths {
	return Paths{
		CACert: filepath.Join(dir, "ca.crt"), CAKey: filepath.Join(dir, "ca.key"),
		Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key"),
	}
}

// Ensure creates the CA and a server certificate for hosts (plus localhost,
// 127.0.0.1 and ::1; a host may be a wildcard such as *.apps.localhost)
// unless valid ones exist, and returns whether it made new ones. A
// certificate made by an older version that lacks one of hosts is replaced.
func Ensure(p Paths, hosts []string) (bool, error) {
	if c, err := tls.LoadX509KeyPair(p.Cert, p.Key); err == nil {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil && time.Until(leaf.NotAfter) > 30*24*time.Hour && covers(leaf, hosts) {
			if _, err := os.Stat(p.CACert); err == nil {
				return false, nil
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.CACert), 0o700); err != nil {
		return false, err
	}
	caKey, caCert, err := loadOrMakeCA(p)
	if err != nil {
		return false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "chub server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(2, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return false, fmt.Errorf("sign server certificate: %w", err)
	}
	if err := writeKey(p.Key, key); err != nil {
		return false, err
	}
	if err := writePEM(p.Cert, "CERTIFICATE", der, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			h = "x." + rest // a wildcard is there if it matches a name it stands for
		}
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func loadOrMakeCA(p Paths) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	certPEM, err1 := os.ReadFile(p.CACert)
	keyPEM, err2 := os.ReadFile(p.CAKey)
	if err1 == nil && err2 == nil {
		cb, _ := pem.Decode(certPEM)
		kb, _ := pem.Decode(keyPEM)
		if cb != nil && kb != nil {
			cert, err := x509.ParseCertificate(cb.Bytes)
			key, err2 := x509.ParseECPrivateKey(kb.Bytes)
			if err == nil && err2 == nil {
				return key, cert, nil
			}
		}
		return nil, nil, errors.New("the local CA in " + filepath.Dir(p.CACert) + " is unreadable; move it away to make a new one")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "ComputeHub local CA (" + host + ")"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("make local CA: %w", err)
	}
	if err := writeKey(p.CAKey, key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(p.CACert, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
