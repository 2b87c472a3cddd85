// Command floor is the physical limit of token-service's job on this machine: the same POST /token
// request decoded, the same claims signed by hand with a reused HMAC, the same JSON answered, with
// the standard library only and no middleware at all. No real service beats it; bench/load
// measures token-service against it. It is a yardstick, never a way to issue tokens.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"net/http"
	"os"
	"sync"
	"time"
)

type request struct {
	Room       string `json:"room"`
	Identity   string `json:"identity"`
	Name       string `json:"name"`
	TTLSeconds int64  `json:"ttl_seconds"`
}

type video struct {
	RoomJoin             bool   `json:"roomJoin"`
	Room                 string `json:"room"`
	CanPublish           bool   `json:"canPublish"`
	CanSubscribe         bool   `json:"canSubscribe"`
	CanPublishData       bool   `json:"canPublishData"`
	CanUpdateOwnMetadata bool   `json:"canUpdateOwnMetadata"`
}

type claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	ExpiresAt int64  `json:"exp"`
	NotBefore int64  `json:"nbf"`
	IssuedAt  int64  `json:"iat"`
	Identity  string `json:"identity"`
	Name      string `json:"name,omitempty"`
	Video     video  `json:"video"`
}

type reply struct {
	Token     string `json:"token"`
	WSURL     string `json:"wsUrl"`
	ExpiresAt int64  `json:"expiresAt"`
	Identity  string `json:"identity"`
	Room      string `json:"room"`
}

var header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "."

func main() {
	key, secret, wsURL := os.Getenv("LIVEKIT_API_KEY"), []byte(os.Getenv("LIVEKIT_API_SECRET")), os.Getenv("LIVEKIT_WS_URL")
	macs := sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
	http.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<10)).Decode(&req); err != nil || req.Room == "" || req.Identity == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if req.TTLSeconds == 0 {
			req.TTLSeconds = 3600
		}
		now := time.Now().Unix()
		c := claims{Issuer: key, Subject: req.Identity, ExpiresAt: now + req.TTLSeconds, NotBefore: now, IssuedAt: now,
			Identity: req.Identity, Name: req.Name, Video: video{RoomJoin: true, Room: req.Room, CanPublish: true, CanSubscribe: true, CanPublishData: true}}
		payload, _ := json.Marshal(c)
		signing := header + base64.RawURLEncoding.EncodeToString(payload)
		mac := macs.Get().(hash.Hash)
		mac.Reset()
		mac.Write([]byte(signing))
		token := signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		macs.Put(mac)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply{Token: token, WSURL: wsURL, ExpiresAt: c.ExpiresAt, Identity: req.Identity, Room: req.Room})
	})
	http.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Addr: os.Getenv("HOST") + ":" + os.Getenv("PORT"), ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
