package sshgate

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// HostKeyFile is the name of the server's SSH host key under its directory.
const HostKeyFile = "ssh_host_ed25519_key"

// LoadOrCreateHostKey returns the server's ed25519 host key kept in dir,
// making it (mode 0600) on first use so that it stays the same across
// restarts.
func LoadOrCreateHostKey(dir string) (ssh.Signer, error) {
	path := filepath.Join(dir, HostKeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("make SSH host key directory: %w", err)
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(priv, "chub server host key")
		if err != nil {
			return nil, err
		}
		data = pem.EncodeToMemory(block)
		// O_EXCL: two servers starting on one data dir keep the first key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateHostKey(dir)
		}
		if err != nil {
			return nil, fmt.Errorf("write SSH host key: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("write SSH host key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write SSH host key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read SSH host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("SSH host key %s: %w", path, err)
	}
	return signer, nil
}
