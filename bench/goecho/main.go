// goecho is the Go floor of the vm-admission benchmarks: net/http + crypto/tls + encoding/json, decoding the
// whole AdmissionReview (the object into a map, as a Go webhook that reads it must) and answering an allowed
// AdmissionReview with the request's uid, in the request's apiVersion. Standard library only.
//
//	goecho -addr 127.0.0.1:9443 -cert tls.crt -key tls.key
//
// It serves POST /mutate and POST /validate (so it can be registered as a webhook the same way as
// vm-admission: a valid response with apiVersion, kind, response.uid and allowed: true) and GET /healthz.
// HTTP/2 is off unless -h2 is given, so it speaks HTTP/1.1 like vm-admission does. With -patch FILE it answers
// /mutate with that JSON Patch (patchType JSONPatch): what applying a mutation costs the API server, apart from
// the webhook's own work.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const maxBody = 7 << 20

type request struct {
	UID       string                 `json:"uid"`
	Kind      map[string]string      `json:"kind"`
	Operation string                 `json:"operation"`
	Namespace string                 `json:"namespace"`
	Name      string                 `json:"name"`
	Object    map[string]interface{} `json:"object"`
	OldObject map[string]interface{} `json:"oldObject"`
	DryRun    *bool                  `json:"dryRun"`
}

type review struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Request    *request `json:"request"`
}

type response struct {
	UID       string `json:"uid"`
	Allowed   bool   `json:"allowed"`
	PatchType string `json:"patchType,omitempty"`
	Patch     []byte `json:"patch,omitempty"` // encoding/json writes []byte as base64, as the API expects
}

type answer struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Response   response `json:"response"`
}

func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// patch is the JSON Patch /mutate answers with (-patch), nil for none.
var patch []byte

func admit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		fail(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	var doc review
	if err := json.Unmarshal(body, &doc); err != nil || doc.Request == nil || doc.Request.UID == "" {
		fail(w, http.StatusBadRequest, "not an AdmissionReview")
		return
	}
	apiVersion := doc.APIVersion
	if apiVersion == "" {
		apiVersion = "admission.k8s.io/v1"
	}
	resp := response{UID: doc.Request.UID, Allowed: true}
	if patch != nil && r.URL.Path == "/mutate" {
		resp.PatchType, resp.Patch = "JSONPatch", patch
	}
	out, err := json.Marshal(answer{apiVersion, "AdmissionReview", resp})
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9443", "address to listen on")
	cert := flag.String("cert", "tls.crt", "PEM serving certificate")
	key := flag.String("key", "tls.key", "PEM private key")
	h2 := flag.Bool("h2", false, "offer HTTP/2 (off: HTTP/1.1 only, as vm-admission)")
	patchFile := flag.String("patch", "", "a JSON Patch file: answer /mutate with it")
	flag.Parse()
	if *patchFile != "" {
		data, err := os.ReadFile(*patchFile)
		if err != nil {
			log.Fatal(err)
		}
		var ops []map[string]interface{}
		if err := json.Unmarshal(data, &ops); err != nil {
			log.Fatalf("%s: not a JSON Patch: %v", *patchFile, err)
		}
		patch = data
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", admit)
	mux.HandleFunc("/validate", admit)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if !*h2 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		_ = srv.Close()
	}()
	if err := srv.ListenAndServeTLS(*cert, *key); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
