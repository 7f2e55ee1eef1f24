// The Express aggregation gateway as the seed prints it (Node.js + Express + node-fetch),
// with the two services' addresses and the port from the environment so that the benchmark
// can run it on loopback: SERVICE1, SERVICE2 (http://host:port), PORT.
const express = require('express');
const fetch = require('node-fetch');
const app = express();
const service1Url = process.env.SERVICE1 || 'http://service1';
const service2Url = process.env.SERVICE2 || 'http://service2';

app.get('/api/data', async (req, res) => {
    const service1 = await fetch(`${service1Url}/data`);
    const service2 = await fetch(`${service2Url}/data`);
    res.json({
        service1: await service1.json(),
        service2: await service2.json()
    });
});

app.listen(Number(process.env.PORT || 3000), '127.0.0.1', () => console.log("API Gateway running"));
