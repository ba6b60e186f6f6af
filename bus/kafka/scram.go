package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scram is the client side of a SCRAM exchange (RFC 5802, without channel
// binding) for sarama's SCRAMClient interface. Passwords are used as given
// (no SASLprep), which is exact for ASCII passwords. Its errors never
// contain the password.
type scram struct {
	hash func() hash.Hash

	user, password, authzID string

	step            int
	nonce           string // the client's part of the nonce
	gs2Header       string
	clientFirstBare string
	serverSignature []byte
	done            bool
}

func newSCRAM(h func() hash.Hash) *scram { return &scram{hash: h} }

// Begin starts an exchange for user and password.
func (s *scram) Begin(user, password, authzID string) error {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("registrar/kafka: scram nonce: %w", err)
	}
	*s = scram{hash: s.hash, user: user, password: password, authzID: authzID,
		nonce: base64.RawStdEncoding.EncodeToString(raw[:])}
	return nil
}

// Step answers the server's challenge: the empty challenge starts the
// exchange, the server-first message gets the client proof, and the
// server-final message is verified.
func (s *scram) Step(challenge string) (string, error) {
	s.step++
	switch s.step {
	case 1:
		s.gs2Header = "n,"
		if s.authzID != "" {
			s.gs2Header += "a=" + saslName(s.authzID)
		}
		s.gs2Header += ","
		s.clientFirstBare = "n=" + saslName(s.user) + ",r=" + s.nonce
		return s.gs2Header + s.clientFirstBare, nil
	case 2:
		return s.clientFinal(challenge)
	case 3:
		s.done = true
		attrs := scramAttrs(challenge)
		if e, ok := attrs["e"]; ok {
			return "", fmt.Errorf("registrar/kafka: scram: server rejected authentication: %s", e)
		}
		v, err := base64.StdEncoding.DecodeString(attrs["v"])
		if err != nil || !hmac.Equal(v, s.serverSignature) {
			return "", errors.New("registrar/kafka: scram: the server's signature does not match: it does not know the password")
		}
		return "", nil
	default:
		return "", errors.New("registrar/kafka: scram: exchange already finished")
	}
}

// Done reports whether the exchange is over.
func (s *scram) Done() bool { return s.done }

func (s *scram) clientFinal(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	if e, ok := attrs["e"]; ok {
		return "", fmt.Errorf("registrar/kafka: scram: server rejected authentication: %s", e)
	}
	nonce := attrs["r"]
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
		return "", errors.New("registrar/kafka: scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil || len(salt) == 0 {
		return "", errors.New("registrar/kafka: scram: server sent no valid salt")
	}
	iter, err := strconv.Atoi(attrs["i"])
	if err != nil || iter < 1 {
		return "", errors.New("registrar/kafka: scram: server sent no valid iteration count")
	}
	salted, err := pbkdf2.Key(s.hash, s.password, salt, iter, s.hash().Size())
	if err != nil {
		return "", errors.New("registrar/kafka: scram: cannot derive the salted password")
	}
	clientKey := s.hmac(salted, "Client Key")
	h := s.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(s.gs2Header)) + ",r=" + nonce
	authMessage := s.clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := s.hmac(storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	s.serverSignature = s.hmac(s.hmac(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (s *scram) hmac(key []byte, msg string) []byte {
	m := hmac.New(s.hash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// saslName escapes a user name for a SCRAM attribute.
func saslName(name string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(name)
}

// scramAttrs parses "k=v,k=v" SCRAM attributes.
func scramAttrs(msg string) map[string]string {
	attrs := make(map[string]string)
	for _, kv := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && len(k) == 1 {
			attrs[k] = v
		}
	}
	return attrs
}
