// What the reader speaks: the text of an element of the host's page in reading order, and a map
// from offsets in that text back to places in the page. Reads the DOM, never changes it.
//
//   const page = readText(article);
//   page.text                      // blocks end with "\n" (a pause); whitespace collapsed
//   page.range(start, end)         // a DOM Range over text[start:end] (null outside mapped text)
//   page.offsetAt(node, offset)    // a DOM position -> offset in text (null outside it)
//   page.sentences                 // [{start, end}], in text order
//   page.sentenceAt(offset)        // index of the sentence holding offset

// Never read: code, figures (with their captions), asides, navigation, forms and their controls,
// scripts and embedded content. `data-speech-read` on an element reads it (and what is inside it)
// after all; `data-speech-skip` skips anything.
const SKIPPED = new Set(
  `pre code kbd samp figure aside nav form button input select textarea option datalist output meter progress
  script style noscript template svg math iframe object embed canvas audio video img picture map dialog`.split(/\s+/),
);
// A run of these is one pause between words; the marks that change no sound are dropped.
const SPACE = /[\s\u00a0]+/y;
const WORD = /[^\s\u00a0\u00ad\u200b-\u200d\u2060\ufeff]+/y;
const SILENT = /[\u00ad\u200b-\u200d\u2060\ufeff]+/y;
const PATTERNS = [
  [SPACE, "space"],
  [SILENT, "silent"],
  [WORD, "word"],
];
// Sentences as the server splits them (speech/text.py): after . ! ? … and closing quotes or
// brackets before white space, unless the full stop ends an abbreviation or an initial; each line
// is one at least.
const SENTENCE_END = /[.!?…。！？]+["'”’)\]]*(?=\s)/g;
const ABBREVIATIONS = new Set(
  `mr mrs ms dr prof sr jr st mt vs etc fig no vol approx dept est inc ltd co corp
  jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun
  e.g i.e a.m p.m u.s u.k cf al`.split(/\s+/),
);

function isAbbreviation(line, end) {
  if (line[end - 1] !== ".") return false;
  const word = line.slice(0, end).split(/\s+/).pop().replace(/\.+$/, "").toLowerCase();
  return ABBREVIATIONS.has(word) || (word.length === 1 && /\p{L}/u.test(word));
}

// Whether `element` is left out, and whether what is inside it is forced in.
function judge(element, forced) {
  if (element.hasAttribute("data-speech-skip")) return { skip: true };
  if (element.hasAttribute("data-speech-reader") || element.hasAttribute("data-speech-player")) return { skip: true };
  const force = forced || element.hasAttribute("data-speech-read");
  const style = getComputedStyle(element);
  if (style.display === "none") return { skip: !element.hasAttribute("data-speech-read") };
  if (element.hidden || element.getAttribute("aria-hidden") === "true" || element.inert) {
    return { skip: !element.hasAttribute("data-speech-read"), style };
  }
  if (!force && SKIPPED.has(element.localName)) return { skip: true };
  return { skip: false, force, style };
}

const INLINE = /^(inline|contents|ruby)/;

export function readText(root) {
  let text = "";
  const segments = []; // {start, end, node, offset}: text[start:end] is node.data[offset:offset + end - start]
  const byNode = new Map();

  const map = (node, offset, piece) => {
    const segment = { start: text.length, end: text.length + piece.length, node, offset };
    text += piece;
    segments.push(segment);
    if (!byNode.has(node)) byNode.set(node, []);
    byNode.get(node).push(segment);
  };
  // The end of a block: the space before it goes, a line break (a pause) comes.
  const pause = () => {
    if (!text || text.endsWith("\n")) return;
    if (text.endsWith(" ")) {
      const space = segments.pop();
      const list = byNode.get(space.node);
      list.pop();
      if (!list.length) byNode.delete(space.node);
      text = text.slice(0, -1);
    }
    text += "\n";
  };
  const readNode = (node, visible) => {
    if (!visible) return;
    const data = node.data;
    let at = 0;
    while (at < data.length) {
      for (const [pattern, kind] of PATTERNS) {
        pattern.lastIndex = at;
        const match = pattern.exec(data);
        if (!match) continue;
        if (kind === "word") map(node, at, match[0]);
        else if (kind === "space" && text && !text.endsWith("\n") && !text.endsWith(" ")) map(node, at, " ");
        at += match[0].length;
        break;
      }
    }
  };
  const walk = (element, forced, visible) => {
    for (const child of element.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        readNode(child, visible);
        continue;
      }
      if (child.nodeType !== Node.ELEMENT_NODE) continue;
      if (child.localName === "br") {
        pause();
        continue;
      }
      const { skip, force, style } = judge(child, forced);
      if (skip) continue;
      const block = !INLINE.test(style.display);
      if (block) pause();
      walk(child, force, style.visibility === "visible");
      if (block) pause();
    }
  };
  const rootStyle = getComputedStyle(root);
  walk(root, root.hasAttribute("data-speech-read"), rootStyle.visibility === "visible");
  pause();
  text = text.replace(/\n$/, "");
  return new PageText(text, segments, byNode);
}

export class PageText {
  constructor(text, segments, byNode) {
    this.text = text;
    this.segments = segments;
    this.byNode = byNode;
    this.sentences = splitSentences(text);
  }

  // The first segment that ends after `offset`.
  #segmentAfter(offset) {
    let low = 0;
    let high = this.segments.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.segments[mid].end <= offset) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  range(start, end) {
    const first = this.#segmentAfter(start);
    if (end <= start || first >= this.segments.length || this.segments[first].start >= end) return null;
    let last = Math.min(this.#segmentAfter(end - 1), this.segments.length - 1);
    if (this.segments[last].start >= end) last -= 1; // end falls in a pause: the segment before it
    const a = this.segments[first];
    const b = this.segments[last];
    const range = document.createRange();
    range.setStart(a.node, a.offset + Math.max(0, start - a.start));
    range.setEnd(b.node, b.offset + Math.min(end, b.end) - b.start);
    return range;
  }

  // A position in the page (a caret: a text node and an offset in it) as an offset in the text.
  offsetAt(node, offset) {
    if (node.nodeType !== Node.TEXT_NODE) {
      const after = node.childNodes[offset] || node;
      const walker = document.createTreeWalker(after, NodeFilter.SHOW_TEXT);
      const first = after.nodeType === Node.TEXT_NODE ? after : walker.nextNode();
      if (!first) return null;
      node = first;
      offset = 0;
    }
    const list = this.byNode.get(node);
    if (!list) return null;
    for (const segment of list) {
      if (offset < segment.offset + segment.end - segment.start) {
        return segment.start + Math.max(0, offset - segment.offset);
      }
    }
    return list[list.length - 1].end;
  }

  sentenceAt(offset) {
    let low = 0;
    let high = this.sentences.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.sentences[mid].start <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  }
}

export function splitSentences(text) {
  const sentences = [];
  let lineStart = 0;
  for (const line of text.split("\n")) {
    let start = 0;
    const add = (from, to) => {
      const piece = line.slice(from, to);
      const lead = piece.length - piece.trimStart().length;
      const body = piece.trim();
      if (body) sentences.push({ start: lineStart + from + lead, end: lineStart + from + lead + body.length });
    };
    for (const match of line.matchAll(SENTENCE_END)) {
      const end = match.index + match[0].length;
      if (isAbbreviation(line, end)) continue;
      add(start, end);
      start = end;
    }
    add(start, line.length);
    lineStart += line.length + 1;
  }
  return sentences;
}
