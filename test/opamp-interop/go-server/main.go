// A minimal OpAMP server built on opamp-go (github.com/open-telemetry/opamp-go), the OpenTelemetry reference
// implementation, for test/fleet-interop.test.ts: the third-party server a Bifrost collector must work against.
// It offers every agent the same remote configuration (files given on the command line, sent unchanged in the
// AgentConfigMap) and writes what each agent last reported (description, remote config status, effective
// config, health) to a JSON file after every message. Loopback only.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/open-telemetry/opamp-go/server"
	"github.com/open-telemetry/opamp-go/server/types"
)

type nopLogger struct{}

func (nopLogger) Debugf(context.Context, string, ...interface{}) {}
func (nopLogger) Errorf(_ context.Context, format string, v ...interface{}) {
	log.Printf(format, v...)
}

// agentState is what an agent last reported; empty fields were never reported.
type agentState struct {
	Description     map[string]string `json:"description"`
	Capabilities    uint64            `json:"capabilities"`
	RemoteHash      string            `json:"remote_config_hash"`
	RemoteStatus    string            `json:"remote_config_status"`
	RemoteError     string            `json:"remote_config_error"`
	EffectiveConfig map[string]string `json:"effective_config"`
	Healthy         *bool             `json:"healthy"`
	HealthStatus    string            `json:"health_status"`
	Components      []string          `json:"health_components"`
	Messages        int               `json:"messages"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on")
	files := flag.String("files", "", "comma-separated name=path of the configuration files offered")
	stateFile := flag.String("state", "state.json", "where agents' reports are written")
	flag.Parse()

	configMap := &protobufs.AgentConfigMap{ConfigMap: map[string]*protobufs.AgentConfigFile{}}
	hash := sha256.New()
	for _, entry := range strings.Split(*files, ",") {
		if entry == "" {
			continue
		}
		name, path, _ := strings.Cut(entry, "=")
		body, err := os.ReadFile(path)
		if err != nil {
			log.Fatal(err)
		}
		contentType := "application/json"
		if strings.HasSuffix(name, ".yaml") {
			contentType = "text/yaml"
			hash.Write(body)
		}
		configMap.ConfigMap[name] = &protobufs.AgentConfigFile{Body: body, ContentType: contentType}
	}
	configHash := hash.Sum(nil)

	var mu sync.Mutex
	agents := map[string]*agentState{}
	write := func() {
		data, _ := json.MarshalIndent(agents, "", "  ")
		_ = os.WriteFile(*stateFile+".tmp", data, 0o644)
		_ = os.Rename(*stateFile+".tmp", *stateFile)
	}

	onMessage := func(_ context.Context, _ types.Connection, msg *protobufs.AgentToServer) *protobufs.ServerToAgent {
		mu.Lock()
		defer mu.Unlock()
		uid := hex.EncodeToString(msg.InstanceUid)
		agent, ok := agents[uid]
		if !ok {
			agent = &agentState{}
			agents[uid] = agent
		}
		agent.Messages++
		agent.Capabilities = msg.Capabilities
		if d := msg.AgentDescription; d != nil {
			agent.Description = map[string]string{}
			for _, kv := range append(d.IdentifyingAttributes, d.NonIdentifyingAttributes...) {
				agent.Description[kv.Key] = kv.Value.GetStringValue()
			}
		}
		if s := msg.RemoteConfigStatus; s != nil {
			agent.RemoteHash = hex.EncodeToString(s.LastRemoteConfigHash)
			agent.RemoteStatus = s.Status.String()
			agent.RemoteError = s.ErrorMessage
		}
		if e := msg.EffectiveConfig; e != nil && e.ConfigMap != nil {
			agent.EffectiveConfig = map[string]string{}
			for name, file := range e.ConfigMap.ConfigMap {
				agent.EffectiveConfig[name] = string(file.Body)
			}
		}
		if h := msg.Health; h != nil {
			healthy := h.Healthy
			agent.Healthy = &healthy
			agent.HealthStatus = h.Status
			agent.Components = nil
			for name := range h.ComponentHealthMap {
				agent.Components = append(agent.Components, name)
			}
		}
		write()
		response := &protobufs.ServerToAgent{InstanceUid: msg.InstanceUid}
		if msg.RemoteConfigStatus == nil || hex.EncodeToString(msg.RemoteConfigStatus.LastRemoteConfigHash) != hex.EncodeToString(configHash) {
			response.RemoteConfig = &protobufs.AgentRemoteConfig{Config: configMap, ConfigHash: configHash}
		}
		return response
	}

	srv := server.New(nopLogger{})
	settings := server.StartSettings{
		Settings: server.Settings{Callbacks: types.Callbacks{
			OnConnecting: func(*http.Request) types.ConnectionResponse {
				return types.ConnectionResponse{Accept: true, ConnectionCallbacks: types.ConnectionCallbacks{OnMessage: onMessage}}
			},
		}},
		ListenEndpoint: *listen,
	}
	if err := srv.Start(settings); err != nil {
		log.Fatal(err)
	}
	// The test reads the bound address from the first line.
	os.Stdout.WriteString("listening " + srv.Addr().String() + "\n")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	_ = srv.Stop(context.Background())
}
