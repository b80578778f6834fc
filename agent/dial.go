package agent

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// serveDial tunnels a websocket to a TCP port on the instance's loopback:
// GET /v1/dial?port=N. The server uses it for applications and SSH port
// forwarding, so no instance port is ever published on the host.
func (a *Agent) serveDial(w http.ResponseWriter, r *http.Request) {
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil || port < 1 || port > 65535 {
		http.Error(w, "port must be 1-65535", http.StatusBadRequest)
		return
	}
	host := r.URL.Query().Get("host")
	if host == "" {
		host = "127.0.0.1"
	}
	target, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 10*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer target.Close()
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws := websocket.NetConn(r.Context(), conn, websocket.MessageBinary)
	defer ws.Close()
	a.touch("dial")
	done := make(chan struct{}, 2)
	// Every request through the tunnel is use, not only its opening.
	in := activityReader{r: ws, touch: func() { a.touch("dial") }}
	go func() { io.Copy(target, in); target.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(ws, target); ws.Close(); done <- struct{}{} }()
	<-done
	<-done
}
