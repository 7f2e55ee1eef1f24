// A JSON service that answers after DELAY_MS milliseconds (bench/aggregate.sh latency test):
// PORT, NAME, DELAY_MS from the environment. Node's event loop keeps many waits in flight.
const http = require('http');
const delay = Number(process.env.DELAY_MS || 0);
const body = JSON.stringify({ name: process.env.NAME || 'service', items: [1, 2, 3] });
http.createServer((req, res) => {
    setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
    }, delay);
}).listen(Number(process.env.PORT), '127.0.0.1');
