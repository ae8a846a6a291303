// An HTTP/2 server over TLS for the http_client tests (node's http2 module).
// Usage: node h2_server.js PORT KEY.pem CERT.pem
// Every POST is answered 300 ms later with {"version": "<HTTP version>"};
// GET /stats answers {"sessions": N, "streams": M}: connections and requests
// seen so far.
'use strict';
const http2 = require('http2');
const fs = require('fs');
const [, , port, key, cert] = process.argv;
let sessions = 0;
let streams = 0;
const server = http2.createSecureServer({
  key: fs.readFileSync(key),
  cert: fs.readFileSync(cert),
  allowHTTP1: true,
});
server.on('session', () => { sessions += 1; });
server.on('request', (req, res) => {
  if (req.url === '/stats') {
    res.end(JSON.stringify({ sessions, streams }));
    return;
  }
  streams += 1;
  req.on('data', () => {});
  req.on('end', () => setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ version: req.httpVersion }));
  }, 300));
});
server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
