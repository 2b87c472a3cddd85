// The whole browser path: fetch a join token from token-service (cross-origin), connect to
// LiveKit with it, optionally publish the microphone, and say what happens in plain words.
// Query parameters fill the form and ?autojoin=1 submits it: tokenUrl, livekitUrl, room,
// identity, source (token, or endpoint for LiveKit's TokenSource), publish (1/0), canPublish
// (true/false, sent as a grant on /token), agent (an agent name the TokenSource request
// dispatches, as LiveKit's agentName option sends it).
'use strict';

const { Room, RoomEvent, TokenSource } = LivekitClient;
const form = document.getElementById('join');
const leaveButton = document.getElementById('leave');
const stateEl = document.getElementById('state');
const errorEl = document.getElementById('error');
const participantsEl = document.getElementById('participants');
const params = new URLSearchParams(location.search);
let room;

for (const name of ['tokenUrl', 'livekitUrl', 'room', 'identity', 'source']) {
  if (params.has(name)) form.elements[name].value = params.get(name);
}
if (params.has('publish')) form.elements.publish.checked = params.get('publish') === '1';
if (!form.elements.identity.value) form.elements.identity.value = 'guest-' + Math.random().toString(36).slice(2, 8);

// The page's state, for people and for the browser test (data-state on <body>).
function setState(state, words) {
  document.body.dataset.state = state;
  stateEl.textContent = words || state;
}

function showError(message) {
  errorEl.textContent = message;
  errorEl.classList.remove('hidden');
  document.body.dataset.error = message;
}

function renderParticipants() {
  participantsEl.replaceChildren();
  if (!room) return;
  const everyone = [room.localParticipant, ...room.remoteParticipants.values()];
  for (const p of everyone) {
    const li = document.createElement('li');
    const tracks = [...p.trackPublications.values()].map((t) => t.source).join(', ') || 'no tracks';
    li.textContent = `${p.name || p.identity}${p === room.localParticipant ? ' (you)' : ''}: ${tracks}`;
    participantsEl.append(li);
  }
}

async function fetchToken(tokenUrl, body) {
  let res;
  try {
    res = await fetch(tokenUrl.replace(/\/$/, '') + '/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new Error(`Could not reach the token service at ${tokenUrl}: the network failed or the ` +
      `browser blocked the request (is this page's origin, ${location.origin}, in its CORS_ORIGINS?).`);
  }
  const reply = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new Error(`The token service refused (${res.status}): ${reply.message || res.statusText}`);
  }
  return reply;
}

// fetchConnectionDetails asks /connection-details exactly as LiveKit's SDKs do: the SDK's own
// TokenSource.endpoint() builds the request and parses the reply.
async function fetchConnectionDetails(tokenUrl, room, identity) {
  const source = TokenSource.endpoint(tokenUrl.replace(/\/$/, '') + '/connection-details');
  const options = { roomName: room, participantIdentity: identity, participantName: identity };
  if (params.has('agent')) options.agentName = params.get('agent');
  let details;
  try {
    details = await source.fetch(options);
  } catch (e) {
    throw new Error(`Could not get connection details from ${tokenUrl}: ${e.message} ` +
      `(is this page's origin, ${location.origin}, in its CORS_ORIGINS?)`);
  }
  return { token: details.participantToken, wsUrl: details.serverUrl };
}

async function join() {
  errorEl.classList.add('hidden');
  const f = form.elements;
  const request = { room: f.room.value, identity: f.identity.value };
  if (params.has('canPublish')) request.grants = { canPublish: params.get('canPublish') === 'true' };
  setState('fetching', 'asking token-service for a token…');
  let issued;
  try {
    issued = f.source.value === 'endpoint'
      ? await fetchConnectionDetails(f.tokenUrl.value, request.room, request.identity)
      : await fetchToken(f.tokenUrl.value, request);
  } catch (e) {
    setState('error', 'not connected');
    showError(e.message);
    return;
  }

  room = new Room();
  room.on(RoomEvent.ConnectionStateChanged, (s) => setState(s))
    .on(RoomEvent.ParticipantConnected, renderParticipants)
    .on(RoomEvent.ParticipantDisconnected, renderParticipants)
    .on(RoomEvent.LocalTrackPublished, renderParticipants)
    .on(RoomEvent.TrackPublished, renderParticipants)
    .on(RoomEvent.Disconnected, () => { leaveButton.disabled = true; renderParticipants(); });
  try {
    await room.connect(f.livekitUrl.value || issued.wsUrl, issued.token);
  } catch (e) {
    setState('error', 'not connected');
    showError(`Could not connect to LiveKit at ${f.livekitUrl.value || issued.wsUrl}: ${e.message}`);
    return;
  }
  leaveButton.disabled = false;
  setState('connected', `connected to room "${room.name}" as ${room.localParticipant.identity}`);
  renderParticipants();

  if (!f.publish.checked) return;
  try {
    await room.localParticipant.setMicrophoneEnabled(true);
    setState('published', `connected to room "${room.name}", microphone published`);
  } catch (e) {
    setState('publish-refused', 'connected, but the microphone could not be published');
    showError(`Publishing the microphone was refused: ${e.message}` +
      (room.localParticipant.permissions?.canPublish === false ? ' (this token does not allow publishing)' : ''));
  }
  renderParticipants();
}

form.addEventListener('submit', (event) => { event.preventDefault(); join(); });
leaveButton.addEventListener('click', () => room && room.disconnect());
if (params.get('autojoin') === '1') join();
