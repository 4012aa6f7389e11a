// AudioWorklet processor: microphone audio at the context's rate -> 16 kHz mono PCM16 frames.
//
// Each render quantum (128 samples at `sampleRate`, a global of the worklet scope) is mixed to
// mono, low-passed below the new Nyquist frequency (four cascaded biquads: an 8th-order
// Butterworth filter at 7.2 kHz), then resampled by linear interpolation. Samples are converted to
// Int16 and posted to the main thread in frames of `frameSamples` (1600 = 100 ms at 16 kHz),
// transferring the buffer. A {type: 'flush'} message answers {type: 'flushed', buffer} with what
// is left (a short frame, or null), so the main thread knows every sample has been posted.

'use strict';

// A biquad low-pass (RBJ audio-EQ cookbook), direct form I, state kept across blocks.
class LowPass {
  constructor(rate, cutoff, q) {
    const w0 = (2 * Math.PI * cutoff) / rate;
    const alpha = Math.sin(w0) / (2 * q);
    const cos = Math.cos(w0);
    const a0 = 1 + alpha;
    this.b0 = (1 - cos) / 2 / a0;
    this.b1 = (1 - cos) / a0;
    this.b2 = (1 - cos) / 2 / a0;
    this.a1 = (-2 * cos) / a0;
    this.a2 = (1 - alpha) / a0;
    this.x1 = this.x2 = this.y1 = this.y2 = 0;
  }

  // Filters `block` in place.
  run(block) {
    for (let i = 0; i < block.length; i++) {
      const x = block[i];
      const y =
        this.b0 * x + this.b1 * this.x1 + this.b2 * this.x2 - this.a1 * this.y1 - this.a2 * this.y2;
      this.x2 = this.x1;
      this.x1 = x;
      this.y2 = this.y1;
      this.y1 = y;
      block[i] = y;
    }
  }
}

class DownsampleProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.outRate = opts.targetRate || 16000;
    this.frameSamples = opts.frameSamples || 1600;
    this.step = sampleRate / this.outRate; // input samples per output sample
    // Anti-alias only when decimating: cut at 0.45 of the output rate (7.2 kHz for 16 kHz).
    // These Q values (1 / (2 cos((2k - 1) pi / 16)), k = 1..4) make the cascade an 8th-order
    // Butterworth response: flat below the cutoff, about -25 dB at 10 kHz.
    const cutoff = 0.45 * this.outRate;
    const qs = [0.5098, 0.6013, 0.9, 2.5629];
    this.filters = sampleRate > this.outRate ? qs.map((q) => new LowPass(sampleRate, cutoff, q)) : [];
    this.pos = 0; // position of the next output sample, in input samples, relative to `prev`
    this.prev = 0; // the last input sample of the previous block (index -1 of this block)
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.mono = new Float32Array(128);
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === 'flush') this.flush();
    };
  }

  // Posts the samples gathered so far (possibly a short frame, or none) as the 'flushed' answer.
  flush() {
    const rest = this.filled > 0 ? this.frame.slice(0, this.filled).buffer : null;
    this.port.postMessage({ type: 'flushed', buffer: rest }, rest ? [rest] : []);
    this.filled = 0;
    this.frame = new Int16Array(this.frameSamples);
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.filled === this.frameSamples) {
      const full = this.frame;
      this.port.postMessage(full.buffer, [full.buffer]);
      this.frame = new Int16Array(this.frameSamples);
      this.filled = 0;
    }
  }

  // Mixes the input's channels to one mono block.
  mixDown(channels) {
    const n = channels[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    this.mono.fill(0);
    for (const channel of channels) {
      for (let i = 0; i < n; i++) this.mono[i] += channel[i];
    }
    if (channels.length > 1) {
      for (let i = 0; i < n; i++) this.mono[i] /= channels.length;
    }
    return this.mono;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0 || input[0].length === 0) return true;
    const block = this.mixDown(input);
    for (const filter of this.filters) filter.run(block);
    // Linear interpolation: output sample at input position `pos` (index -1 is `prev`).
    const n = block.length;
    while (this.pos < n - 1) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i < 0 ? this.prev : block[i];
      const b = block[i + 1];
      this.push(a + (b - a) * frac);
      this.pos += this.step;
    }
    this.pos -= n;
    this.prev = block[n - 1];
    return true;
  }
}

registerProcessor('downsample-16k', DownsampleProcessor);
