// The word and the sentence being read, marked with the CSS Custom Highlight API: two entries in
// CSS.highlights, "speech-word" and "speech-sentence", styled by ::highlight(speech-word) and
// ::highlight(speech-sentence) (reader.css; a host's own rules override them). The page's DOM is
// never touched. Where the API is missing, `supported` is false and nothing is marked.

export const WORD = "speech-word";
export const SENTENCE = "speech-sentence";

export class Highlighter {
  constructor() {
    this.supported = typeof Highlight === "function" && typeof CSS !== "undefined" && "highlights" in CSS;
    if (!this.supported) return;
    this.highlights = { [WORD]: new Highlight(), [SENTENCE]: new Highlight() };
    this.highlights[WORD].priority = 1; // the word's colours over the sentence's
  }

  // Mark `range` (a DOM Range, or null for nothing) as the word or the sentence read now.
  show(name, range) {
    if (!this.supported) return;
    const highlight = this.highlights[name];
    highlight.clear();
    if (range) highlight.add(range);
    if (CSS.highlights.get(name) !== highlight) CSS.highlights.set(name, highlight); // another reader's before
  }

  clear() {
    this.show(WORD, null);
    this.show(SENTENCE, null);
  }

  // Removes this reader's highlights from the page (another reader's stay).
  destroy() {
    if (!this.supported) return;
    for (const [name, highlight] of Object.entries(this.highlights)) {
      highlight.clear();
      if (CSS.highlights.get(name) === highlight) CSS.highlights.delete(name);
    }
  }
}
