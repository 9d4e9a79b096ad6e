// The interactive API reference: swagger-ui (from node_modules) over /openapi.json. The token the
// dashboard keeps for this browser session is sent with "Try it out" requests.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger',
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: true,
  displayRequestDuration: true,
  requestInterceptor: (req) => {
    const token = sessionStorage.getItem('barkeep_token');
    if (token && !req.headers.Authorization && !req.headers.authorization) req.headers.Authorization = `Bearer ${token}`;
    return req;
  },
});
