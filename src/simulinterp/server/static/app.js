// simulinterp web page: one client of the WebSocket protocol, version 1 (docs/protocol.md).
//
// Flow: Start (microphone) or a chosen file -> open /ws, send the config, wait for `ready`,
// stream 16 kHz PCM16 frames of ~100 ms -> show source words, partials, translations, speakers,
// lag; play `speech` clips -> Stop sends {"type": "stop"} -> `transcript`, `done`, close.
// No framework, no build step: plain DOM code.

'use strict';

(() => {
  const PROTOCOL_VERSION = 1;
  const SEND_RATE = 16000; // Hz of the frames we send
  const FRAME_SAMPLES = 1600; // 100 ms at 16 kHz
  const MAX_QUEUED_FRAMES = 600; // frames kept while waiting for `ready` (60 s)
  const SOURCE_LINES_KEPT = 4; // sentences shown in the source pane
  const STATUS_KEPT = 6; // messages shown in the status area
  // One colour per speaker, by index (readable on the light background, distinct hues).
  const PALETTE = ['#1565c0', '#c62828', '#2e7d32', '#6a1b9a', '#ef6c00', '#00838f', '#ad1457', '#4e342e'];

  const $ = (id) => document.getElementById(id);
  const ui = {
    start: $('start'),
    stop: $('stop'),
    file: $('file'),
    direction: $('direction'),
    policy: $('policy'),
    latency: $('latency'),
    latencyLabel: $('latency-label'),
    voice: $('voice'),
    glossary: $('glossary'),
    subtitles: $('subtitles'),
    source: $('source'),
    lag: $('lag'),
    status: $('status'),
    downloads: { srt: $('download-srt'), vtt: $('download-vtt'), json: $('download-json') },
  };

  let audioCtx = null; // one AudioContext for capture and playback, made on a user gesture
  let workletLoaded = null; // the promise of addModule, loaded once per context
  let session = null; // the current (or last) session, see newSession()
  let transcriptFiles = null; // {srt, vtt, json} strings offered for download

  // ---------------------------------------------------------------- small helpers

  function setState(state) {
    document.body.dataset.state = state;
    const busy = state === 'connecting' || state === 'streaming' || state === 'stopping';
    ui.start.disabled = busy;
    ui.file.disabled = busy;
    ui.stop.disabled = !(state === 'connecting' || state === 'streaming');
    // the voice checkbox stays live: it mutes or unmutes playback during a session
    for (const el of [ui.direction, ui.policy, ui.latency, ui.glossary]) el.disabled = busy;
  }

  // Adds a line to the status area; `kind` is info, warning or error. A repeat of the last
  // message (same key) only bumps its counter.
  function say(kind, text, key) {
    const last = ui.status.lastElementChild;
    const id = key || text;
    if (last && last.dataset.key === id) {
      const n = Number(last.dataset.count || 1) + 1;
      last.dataset.count = String(n);
      last.textContent = `${text} (×${n})`;
      return;
    }
    const line = document.createElement('div');
    line.className = `msg ${kind}`;
    line.dataset.key = id;
    line.textContent = text;
    ui.status.appendChild(line);
    while (ui.status.childElementCount > STATUS_KEPT) ui.status.firstElementChild.remove();
  }

  // Removes the 'connecting…' line once the connection is answered (or fails).
  function clearConnecting() {
    const line = ui.status.querySelector('[data-key="connecting"]');
    if (line) line.remove();
  }

  function randomId() {
    const bytes = new Uint8Array(6);
    crypto.getRandomValues(bytes);
    return 'tab-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // The client's id, kept for the tab's life: a reload reconnects as the same client (and so
  // replaces its own dead session at once instead of waiting for it).
  function clientId() {
    try {
      let id = sessionStorage.getItem('simulinterp.client_id');
      if (!id) {
        id = randomId();
        sessionStorage.setItem('simulinterp.client_id', id);
      }
      return id;
    } catch (_) {
      return randomId(); // storage disabled: a fresh id per page
    }
  }

  function socketUrl() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const token = new URLSearchParams(location.search).get('token');
    return scheme + location.host + '/ws' + (token ? '?token=' + encodeURIComponent(token) : '');
  }

  const hasCjk = (text) => /[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]/.test(text);
  const isPunctuation = (text) => text.length > 0 && /^[\p{P}]+$/u.test(text);

  // Joins source units the way the server does (simulinterp.lang.join_units): spaces between
  // English words (punctuation alone sticks to the word before), none between Chinese
  // characters (but a space between two Latin words inside Chinese).
  function joinUnits(units, lang) {
    let out = '';
    for (const unit of units) {
      if (lang !== 'zh') {
        out += !out || isPunctuation(unit) ? unit : ' ' + unit;
      } else {
        if (out && !hasCjk(unit) && !hasCjk(out[out.length - 1])) out += ' ';
        out += unit;
      }
    }
    return out;
  }

  function speakerColour(index) {
    return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];
  }

  function makeChip(turn) {
    const chip = document.createElement('span');
    chip.className = 'chip';
    paintChip(chip, turn);
    return chip;
  }

  function paintChip(chip, turn) {
    chip.textContent = turn.label;
    chip.style.backgroundColor = speakerColour(turn.speaker);
    chip.title = `speaker ${turn.label}`;
  }

  // Keeps a scrolling box pinned to its bottom when it was at the bottom before `change`.
  function keepScrolled(box, change) {
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    change();
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  // ---------------------------------------------------------------- the config

  function parseGlossary(text) {
    const terms = [];
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const cut = line.includes('\t') ? line.indexOf('\t') : line.indexOf('=');
      const source = cut > 0 ? line.slice(0, cut).trim() : '';
      const target = cut > 0 ? line.slice(cut + 1).trim() : '';
      if (source && target) terms.push({ source, target });
      else say('warning', `glossary line skipped (use source=target): ${line}`);
    }
    return terms;
  }

  function latencyValue() {
    const raw = ui.latency.value.trim();
    if (raw === '') return null;
    const value = Number(raw);
    if (!Number.isFinite(value)) {
      say('warning', `latency "${raw}" is not a number: using the default`);
      return null;
    }
    return value;
  }

  function buildConfig() {
    const [from, to] = ui.direction.value.split('-');
    const config = { type: 'config', version: PROTOCOL_VERSION, from, to };
    if (ui.policy.value) config.policy = ui.policy.value;
    config.latency = latencyValue();
    config.voice = ui.voice.checked;
    config.glossary = parseGlossary(ui.glossary.value);
    config.sample_rate = SEND_RATE;
    config.client_id = clientId();
    config.partials = true;
    return config;
  }

  // What the latency knob means for each policy (docs/protocol.md, `latency`).
  const LATENCY_LABELS = {
    '': 'Latency',
    'wait-k': 'k (words)',
    'local-agreement': 'n (agreeing)',
    confidence: 'threshold',
    clause: 'max wait (s)',
  };

  function labelLatency() {
    ui.latencyLabel.textContent = LATENCY_LABELS[ui.policy.value] || 'Latency';
  }

  // ---------------------------------------------------------------- audio context

  // Made (or resumed) inside a user gesture, so the browser lets it capture and play.
  function ensureAudioContext() {
    if (!audioCtx || audioCtx.state === 'closed') {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      audioCtx = new Ctx();
      workletLoaded = null;
    }
    if (audioCtx.state === 'suspended') audioCtx.resume().catch(() => {});
    return audioCtx;
  }

  function loadWorklet(ctx) {
    if (!workletLoaded) workletLoaded = ctx.audioWorklet.addModule('/static/worklet.js');
    return workletLoaded;
  }

  // ---------------------------------------------------------------- a session

  function newSession(kind) {
    return {
      kind, // 'mic' or 'file'
      ws: null,
      config: null,
      from: 'zh',
      to: 'en',
      ready: false,
      info: null, // the `ready` message
      queue: [], // frames captured before `ready`
      stopping: false,
      stopSent: false,
      done: false,
      errorCode: null,
      aborted: false, // stopped before `ready`: no transcript to wait for
      capture: null, // microphone nodes, see startMic()
      fileTimer: null,
      segments: new Map(), // segment index -> {el, textEl, markEl, chip, text, final, ...}
      turns: [{ speaker: 0, label: 'S1', start_s: 0 }], // speaker turns, by start_s
      sourceUnits: [], // every committed source unit (for a client-side transcript)
      srcLine: null, // the source sentence growing now: {el, units, committedEl, partialEl}
      pendingSpeech: null, // the `speech` event whose audio is the next binary frame
      timeZero: null, // AudioContext time of the session's second 0 (set at the first clip)
      playEnd: 0, // AudioContext time when the last scheduled clip ends
      clips: new Set(), // clips scheduled or playing (stopped when the voice is switched off)
      transcript: null,
    };
  }

  function clearOutput() {
    ui.subtitles.replaceChildren();
    ui.source.replaceChildren();
    ui.status.replaceChildren();
    ui.lag.textContent = 'lag –';
    ui.lag.className = 'lag';
    setTranscript(null);
  }

  // Opens the socket and sends the config; resolves on `ready`.
  function connect(s) {
    s.config = buildConfig();
    s.from = s.config.from;
    s.to = s.config.to;
    const ws = new WebSocket(socketUrl());
    ws.binaryType = 'arraybuffer';
    s.ws = ws;
    s.readyPromise = new Promise((resolve, reject) => {
      s.onReady = resolve;
      s.onFail = reject;
    });
    s.readyPromise.catch(() => {}); // failures are shown by the close handler
    ws.onopen = () => ws.send(JSON.stringify(s.config));
    ws.onmessage = (event) => onMessage(s, event.data);
    ws.onclose = (event) => onClose(s, event);
    ws.onerror = () => {}; // a close event always follows, with its code
    return s.readyPromise;
  }

  // Sends one frame; before `ready` (the socket may still be opening) frames wait in a queue.
  function sendFrame(s, buffer) {
    if (s.stopSent || !s.ws || s.ws.readyState > WebSocket.OPEN) return;
    if (!s.ready) {
      if (s.queue.length < MAX_QUEUED_FRAMES) s.queue.push(buffer);
      return;
    }
    s.ws.send(buffer);
  }

  function sendStop(s) {
    if (s.stopSent) return;
    s.stopSent = true;
    if (s.ws && s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify({ type: 'stop' }));
  }

  // Stop: end the capture, send what is left, then {"type": "stop"}; the socket stays open
  // until the server's `done` and close.
  async function stopSession(s) {
    if (!s || s.stopping) return;
    s.stopping = true;
    if (!s.ready) {
      // nothing was accepted yet: just close
      s.aborted = true;
      stopCapture(s);
      if (s.ws) s.ws.close(1000);
      setState('idle');
      return;
    }
    setState('stopping');
    await stopCapture(s);
    sendStop(s);
  }

  // ---------------------------------------------------------------- server messages

  function onMessage(s, data) {
    if (session !== s) return; // a session left behind by a newer one: its output is stale
    if (data instanceof ArrayBuffer) {
      onSpeechAudio(s, data);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      say('warning', 'the server sent a message that is not JSON');
      return;
    }
    const handler = HANDLERS[msg.type];
    if (handler) handler(s, msg); // unknown types are ignored (the protocol may grow)
  }

  const HANDLERS = {
    ready: onReady,
    source: onSource,
    partial: onPartial,
    translation: onTranslation,
    speaker: onSpeaker,
    speech: (s, msg) => {
      s.pendingSpeech = msg;
    },
    lag: onLag,
    warning: (s, msg) => say('warning', `${msg.code ? msg.code + ': ' : ''}${msg.message}`, msg.code),
    transcript: (s, msg) => {
      s.transcript = { srt: msg.srt, vtt: msg.vtt, json: msg.json };
      setTranscript(s.transcript);
    },
    done: onDone,
    error: onError,
    pong: () => {},
  };

  function onReady(s, msg) {
    s.ready = true;
    s.info = msg;
    if (s.stopping) return;
    setState('streaming');
    clearConnecting();
    const knob = msg.latency === null || msg.latency === undefined ? '' : ` ${msg.latency}`;
    say('info', `session ${msg.session_id}: ${msg.from} → ${msg.to}, ${msg.policy}${knob}`);
    if (s.config.voice && !msg.voice) say('warning', `no voice for ${msg.to} on this server`);
    for (const frame of s.queue) s.ws.send(frame);
    s.queue = [];
    s.onReady(msg);
  }

  function onDone(s, msg) {
    s.done = true;
    stopCapture(s);
    if (msg.interrupted) say('warning', 'the session was interrupted');
    say('info', `done: ${Number(msg.audio_s || 0).toFixed(1)} s of audio`);
    setState('done');
  }

  function onError(s, msg) {
    s.errorCode = msg.code;
    clearConnecting();
    if (s.done) {
      // after `done` (session_too_long comes so): the session ended well, say why it ended
      say('warning', `${msg.code}: ${msg.message}`, msg.code);
      return;
    }
    say('error', `${msg.code}: ${msg.message}`, msg.code);
    if (msg.code === 'session_too_long') {
      // the server still finishes what it heard: transcript and done follow
      s.stopping = true;
      s.stopSent = true;
      stopCapture(s);
      setState('stopping');
      return;
    }
    stopCapture(s);
    setState('error');
  }

  function onClose(s, event) {
    stopCapture(s);
    if (s.onFail) s.onFail(new Error('closed')); // no effect once `ready` resolved it
    if (s.done || s.aborted || session !== s) return;
    clearConnecting();
    if (!s.transcript && s.segments.size > 0) {
      setTranscript(clientTranscript(s));
      say('warning', 'connection ended without a transcript: the downloads are built from what arrived');
    }
    if (s.errorCode && s.errorCode !== 'session_too_long') return; // already shown
    if (!s.ready) say('error', `could not connect to the server (close code ${event.code})`);
    else say('error', `connection closed (code ${event.code}${event.reason ? ': ' + event.reason : ''})`);
    setState('error');
  }

  function onLag(s, msg) {
    const lag = Number(msg.lag_s);
    if (!Number.isFinite(lag)) return;
    const mode = msg.mode && msg.mode !== 'normal' ? ` · ${msg.mode}` : '';
    ui.lag.textContent = `lag ${lag.toFixed(1)} s${mode}`;
    ui.lag.className = 'lag ' + (lag < 3 ? 'lag-ok' : lag < 6 ? 'lag-warn' : 'lag-bad');
    if (mode) ui.lag.classList.add('lag-mode');
  }

  // ---------------------------------------------------------------- speakers

  function onSpeaker(s, msg) {
    const turn = {
      speaker: Number(msg.speaker) || 0,
      label: msg.label || `S${(Number(msg.speaker) || 0) + 1}`,
      start_s: Number(msg.start_s) || 0,
    };
    s.turns.push(turn);
    s.turns.sort((a, b) => a.start_s - b.start_s);
    // segments still growing that started in this turn take its label
    for (const seg of s.segments.values()) {
      if (!seg.final && seg.start >= turn.start_s) {
        seg.turn = turnAt(s, seg.start);
        paintChip(seg.chip, seg.turn);
      }
    }
    if (s.srcLine && s.srcLine.units.length === 0) paintChip(s.srcLine.chip, turn);
  }

  // The speaker turn under second `t` of the source (the latest one when t is unknown).
  function turnAt(s, t) {
    let found = s.turns[0];
    for (const turn of s.turns) {
      if (t === null || t === undefined || turn.start_s <= t + 1e-6) found = turn;
    }
    return found;
  }

  // ---------------------------------------------------------------- source pane

  function sourceLine(s, t) {
    if (s.srcLine) return s.srcLine;
    const el = document.createElement('div');
    el.className = 'src-line';
    el.lang = s.from;
    const turn = turnAt(s, t);
    const chip = makeChip(turn);
    const committedEl = document.createElement('span');
    committedEl.className = 'src-commit';
    const partialEl = document.createElement('span');
    partialEl.className = 'partial tentative';
    el.append(chip, committedEl, partialEl);
    keepScrolled(ui.source, () => {
      ui.source.appendChild(el);
      while (ui.source.childElementCount > SOURCE_LINES_KEPT) ui.source.firstElementChild.remove();
    });
    s.srcLine = { el, chip, units: [], committedEl, partialEl, partial: '' };
    return s.srcLine;
  }

  function renderSourceLine(s, line) {
    line.committedEl.textContent = joinUnits(line.units, s.from);
    const gap = s.from !== 'zh' && line.units.length && line.partial ? ' ' : '';
    line.partialEl.textContent = line.partial ? gap + line.partial : '';
  }

  // A partial that still begins with a word just committed loses that word, so it is not
  // shown twice while the next `partial` is on its way.
  function dropCommittedPrefix(partial, word) {
    const p = partial.trimStart();
    const candidates = [word, word.replace(/[\p{P}]+$/u, '')].filter(Boolean);
    for (const w of candidates) {
      if (p.toLowerCase().startsWith(w.toLowerCase())) return p.slice(w.length).trimStart();
    }
    return partial;
  }

  function onSource(s, msg) {
    const text = String(msg.text || '');
    if (!text) return;
    s.sourceUnits.push(text);
    const line = sourceLine(s, msg.start_s);
    line.units.push(text);
    line.partial = dropCommittedPrefix(line.partial, text);
    if (msg.sentence_end) {
      line.partial = '';
      renderSourceLine(s, line);
      line.el.classList.add('done');
      s.srcLine = null; // the next word starts a new line
      return;
    }
    renderSourceLine(s, line);
  }

  function onPartial(s, msg) {
    const text = String(msg.text || '').trim();
    if (!text && !s.srcLine) return;
    const line = sourceLine(s, null);
    line.partial = text;
    renderSourceLine(s, line);
  }

  // ---------------------------------------------------------------- subtitles

  function segmentLine(s, msg) {
    let seg = s.segments.get(msg.segment);
    if (seg) return seg;
    const start = Number(msg.source_start_s);
    const turn = turnAt(s, Number.isFinite(start) ? start : null);
    const el = document.createElement('div');
    el.className = 'line in-progress';
    el.lang = s.to;
    el.dataset.segment = String(msg.segment);
    const chip = makeChip(turn);
    const textEl = document.createElement('span');
    textEl.className = 'commit';
    const markEl = document.createElement('span');
    markEl.className = 'tentative growing';
    markEl.setAttribute('aria-hidden', 'true');
    markEl.textContent = '…';
    el.append(chip, textEl, markEl);
    seg = { el, chip, textEl, markEl, turn, text: '', final: false, start, end: start };
    s.segments.set(msg.segment, seg);
    // newest at the bottom, in segment order even if a line comes late
    let before = null;
    for (const child of ui.subtitles.children) {
      if (Number(child.dataset.segment) > msg.segment) {
        before = child;
        break;
      }
    }
    keepScrolled(ui.subtitles, () => ui.subtitles.insertBefore(el, before));
    return seg;
  }

  function onTranslation(s, msg) {
    const seg = segmentLine(s, msg);
    keepScrolled(ui.subtitles, () => {
      seg.text += String(msg.text || '');
      seg.textEl.textContent = seg.text.trim();
      const end = Number(msg.source_end_s);
      if (Number.isFinite(end)) seg.end = Math.max(seg.end || 0, end);
      if (msg.final) {
        seg.final = true;
        seg.el.classList.remove('in-progress');
        seg.markEl.remove();
      }
    });
  }

  // ---------------------------------------------------------------- speech playback

  function pcm16ToFloat32(buffer) {
    const view = new DataView(buffer);
    const n = Math.floor(buffer.byteLength / 2);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true) / 32768;
    return out;
  }

  // Plays a clip at its place on the session's timeline: the timeline is tied to the context's
  // clock at the first clip; a clip never starts before now nor over the one before it.
  function onSpeechAudio(s, buffer) {
    const event = s.pendingSpeech;
    s.pendingSpeech = null;
    if (!ui.voice.checked || !audioCtx || s.errorCode === 'replaced') return;
    const samples = pcm16ToFloat32(buffer);
    if (samples.length === 0) return;
    const rate = (s.info && s.info.output_sample_rate) || 24000;
    const clip = audioCtx.createBuffer(1, samples.length, rate);
    clip.copyToChannel(samples, 0);
    const now = audioCtx.currentTime;
    const startS = event && Number.isFinite(Number(event.start_s)) ? Number(event.start_s) : null;
    if (s.timeZero === null && startS !== null) s.timeZero = now + 0.05 - startS;
    const wanted = startS === null ? now : s.timeZero + startS;
    const at = Math.max(wanted, now, s.playEnd);
    const node = audioCtx.createBufferSource();
    node.buffer = clip;
    node.connect(audioCtx.destination);
    node.onended = () => s.clips.delete(node);
    s.clips.add(node);
    node.start(at);
    s.playEnd = at + clip.duration;
  }

  function silence(s) {
    for (const node of s.clips) {
      try {
        node.stop();
      } catch (_) {
        // not started yet or already ended
      }
    }
    s.clips.clear();
    s.playEnd = 0;
  }

  // ---------------------------------------------------------------- microphone

  async function startMic() {
    const ctx = ensureAudioContext(); // inside the click: allowed to run
    const s = beginSession('mic');
    try {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        throw new Error('this browser gives no microphone here (a page needs https or localhost)');
      }
      const [stream] = await Promise.all([
        navigator.mediaDevices.getUserMedia({
          audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
        }),
        loadWorklet(ctx),
      ]);
      if (s.stopping || session !== s) {
        stream.getTracks().forEach((t) => t.stop());
        return;
      }
      const source = ctx.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(ctx, 'downsample-16k', {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { targetRate: SEND_RATE, frameSamples: FRAME_SAMPLES },
      });
      // a silent path to the destination keeps the node pulled by the audio graph
      const mute = ctx.createGain();
      mute.gain.value = 0;
      source.connect(node).connect(mute).connect(ctx.destination);
      s.capture = { stream, source, node, mute, flushed: null };
      node.port.onmessage = (event) => onWorkletMessage(s, event.data);
    } catch (err) {
      failSession(s, `microphone: ${err.message || err}`);
    }
  }

  function onWorkletMessage(s, data) {
    if (data instanceof ArrayBuffer) {
      sendFrame(s, data);
      return;
    }
    if (data && data.type === 'flushed') {
      if (data.buffer) sendFrame(s, data.buffer);
      if (s.capture && s.capture.flushed) s.capture.flushed();
    }
  }

  // Ends capturing (microphone or file). For the microphone, the worklet first posts the
  // samples it still holds; resolves when they were sent (or after 500 ms). Calling it again
  // while it runs returns the same promise.
  function stopCapture(s) {
    if (s.fileTimer !== null) {
      clearInterval(s.fileTimer);
      s.fileTimer = null;
    }
    const cap = s.capture;
    if (!cap) return Promise.resolve();
    if (cap.closing) return cap.closing;
    cap.closing = (async () => {
      cap.source.disconnect(); // no more input: the worklet stops producing samples
      cap.stream.getTracks().forEach((t) => t.stop());
      if (!s.stopSent && s.ws && s.ws.readyState === WebSocket.OPEN) {
        await new Promise((resolve) => {
          cap.flushed = resolve;
          cap.node.port.postMessage({ type: 'flush' });
          setTimeout(resolve, 500);
        });
      }
      cap.node.disconnect();
      cap.mute.disconnect();
      if (s.capture === cap) s.capture = null;
    })();
    return cap.closing;
  }

  // ---------------------------------------------------------------- a file

  // Decodes a file, mixes it to mono and resamples it to 16 kHz PCM16.
  async function decodeFile(ctx, file) {
    const bytes = await file.arrayBuffer();
    const decoded = await ctx.decodeAudioData(bytes);
    const length = Math.max(1, Math.ceil(decoded.duration * SEND_RATE));
    const offline = new OfflineAudioContext(1, length, SEND_RATE); // 1 channel: mixes down
    const player = offline.createBufferSource();
    player.buffer = decoded;
    player.connect(offline.destination);
    player.start();
    const rendered = await offline.startRendering();
    const mono = rendered.getChannelData(0);
    const pcm = new Int16Array(mono.length);
    for (let i = 0; i < mono.length; i++) {
      const v = Math.max(-1, Math.min(1, mono[i]));
      pcm[i] = v < 0 ? v * 0x8000 : v * 0x7fff;
    }
    return pcm;
  }

  async function startFile(file) {
    const ctx = ensureAudioContext();
    const s = beginSession('file');
    let pcm;
    try {
      pcm = await decodeFile(ctx, file);
    } catch (err) {
      failSession(s, `cannot decode ${file.name}: ${err.message || err}`);
      return;
    }
    say('info', `${file.name}: ${(pcm.length / SEND_RATE).toFixed(1)} s, sent in real time`);
    try {
      await s.readyPromise;
    } catch (_) {
      return; // the close handler said why
    }
    if (s.stopping) return;
    streamPcm(s, pcm);
  }

  // Sends `pcm` in 100 ms frames at real time (one frame ahead), then stop.
  function streamPcm(s, pcm) {
    const t0 = performance.now();
    let sent = 0;
    const tick = () => {
      const due = Math.floor(((performance.now() - t0) / 1000) * SEND_RATE) + FRAME_SAMPLES;
      while (sent < pcm.length && sent < due) {
        const frame = pcm.slice(sent, sent + FRAME_SAMPLES);
        sendFrame(s, frame.buffer);
        sent += frame.length;
      }
      if (sent >= pcm.length) stopSession(s);
    };
    s.fileTimer = setInterval(tick, 50);
    tick();
  }

  // ---------------------------------------------------------------- session lifecycle

  function beginSession(kind) {
    if (session && session.ws && session.ws.readyState <= WebSocket.OPEN && !session.done) {
      session.aborted = true;
      stopCapture(session);
      session.ws.close(1000);
    }
    clearOutput();
    const s = newSession(kind);
    session = s;
    setState('connecting');
    say('info', 'connecting…', 'connecting');
    connect(s).catch(() => {});
    return s;
  }

  function failSession(s, text) {
    say('error', text);
    s.aborted = true;
    stopCapture(s);
    if (s.ws && s.ws.readyState <= WebSocket.OPEN) s.ws.close(1000);
    setState('error');
  }

  // ---------------------------------------------------------------- transcript downloads

  function setTranscript(files) {
    transcriptFiles = files;
    for (const button of Object.values(ui.downloads)) button.disabled = !files;
  }

  const MIME = { srt: 'application/x-subrip', vtt: 'text/vtt', json: 'application/json' };

  function download(format) {
    if (!transcriptFiles || typeof transcriptFiles[format] !== 'string') return;
    const blob = new Blob([transcriptFiles[format]], { type: `${MIME[format]};charset=utf-8` });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `interpretation.${format}`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function stamp(seconds, separator) {
    const ms = Math.max(0, Math.round(seconds * 1000));
    const h = Math.floor(ms / 3600000);
    const m = Math.floor(ms / 60000) % 60;
    const sec = Math.floor(ms / 1000) % 60;
    const pad = (v, n) => String(v).padStart(n, '0');
    return `${pad(h, 2)}:${pad(m, 2)}:${pad(sec, 2)}${separator}${pad(ms % 1000, 3)}`;
  }

  // A transcript built from the segments received, for a session that ended without the
  // server's: one cue a segment, from its first source second to its last.
  function clientTranscript(s) {
    const cues = [...s.segments.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([index, seg]) => {
        const start = Number.isFinite(seg.start) ? seg.start : 0;
        const end = Number.isFinite(seg.end) && seg.end > start ? seg.end : start + 2;
        const ms = (t) => Math.round(t * 1000) / 1000;
        return { segment: index, start: ms(start), end: ms(end), text: seg.text.trim(), speaker: seg.turn.label, final: seg.final };
      })
      .filter((cue) => cue.text);
    const srt = cues
      .map((c, i) => `${i + 1}\n${stamp(c.start, ',')} --> ${stamp(c.end, ',')}\n${c.text}\n`)
      .join('\n');
    const vtt =
      'WEBVTT\n\n' + cues.map((c) => `${stamp(c.start, '.')} --> ${stamp(c.end, '.')}\n${c.text}\n`).join('\n');
    const joiner = s.to === 'zh' ? '' : ' ';
    const json = JSON.stringify(
      {
        from: s.from,
        to: s.to,
        incomplete: true, // built by the page: the connection ended before the server's
        transcript: joinUnits(s.sourceUnits, s.from),
        translation: cues.map((c) => c.text).join(joiner),
        segments: cues.map((c) => ({
          segment: c.segment,
          start_s: c.start,
          end_s: c.end,
          speaker: c.speaker,
          text: c.text,
          final: c.final,
        })),
      },
      null,
      2,
    );
    return { srt, vtt, json };
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    setState('idle');
    labelLatency();
    ui.policy.addEventListener('change', labelLatency);
    ui.voice.addEventListener('change', () => {
      if (!ui.voice.checked && session) silence(session);
    });
    ui.start.addEventListener('click', () => startMic());
    ui.stop.addEventListener('click', () => stopSession(session));
    ui.file.addEventListener('change', () => {
      const file = ui.file.files && ui.file.files[0];
      ui.file.value = ''; // the same file can be chosen again
      if (file) startFile(file);
    });
    for (const [format, button] of Object.entries(ui.downloads)) {
      button.addEventListener('click', () => download(format));
    }
    // The file picker's change event carries no user gesture: make the audio context on the
    // click that opens it (and on any other), so speech can play.
    document.addEventListener('pointerdown', () => ensureAudioContext(), { capture: true });
    document.addEventListener('keydown', () => ensureAudioContext(), { capture: true });
    // Leaving the page ends the session cleanly where the browser allows it.
    window.addEventListener('pagehide', () => {
      if (session && session.ws && session.ws.readyState === WebSocket.OPEN) session.ws.close(1000);
    });
  }

  init();
})();
