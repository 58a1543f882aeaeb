// The API's error JSON ({"error": {message, type, param, code}}) as an Error the player reports.

export async function apiError(response) {
  let message = `The server answered ${response.status} ${response.statusText}.`;
  let detail = {};
  try {
    detail = (await response.json()).error || {};
    if (detail.message) message = detail.message;
  } catch {
    // not JSON: keep the status line
  }
  return Object.assign(new Error(message), { status: response.status, code: detail.code, param: detail.param });
}
