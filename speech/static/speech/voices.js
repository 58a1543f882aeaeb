// The voice picker: voices grouped by language (named in that language), the listener's choice
// remembered, a short sample in the voice's language, and the text's direction following the voice.

const RTL = new Set(["ar", "fa", "he", "ur", "yi", "ps", "sd", "ug", "dv", "ckb"]);
const STORAGE_KEY = "speech.voice";
const OPENAI_GROUP = "OpenAI names";
const SAMPLES = {
  ar: "مرحبا، هذا صوتي.",
  ca: "Hola, aquesta és la meva veu.",
  cs: "Dobrý den, toto je můj hlas.",
  de: "Hallo, das ist meine Stimme.",
  en: "Hello, this is my voice.",
  es: "Hola, esta es mi voz.",
  fa: "سلام، این صدای من است.",
  fr: "Bonjour, voici ma voix.",
  he: "שלום, זה הקול שלי.",
  it: "Ciao, questa è la mia voce.",
  ja: "こんにちは、これが私の声です。",
  nl: "Hallo, dit is mijn stem.",
  pl: "Cześć, to jest mój głos.",
  pt: "Olá, esta é a minha voz.",
  ru: "Привет, это мой голос.",
  uk: "Привіт, це мій голос.",
};

// Storage can be switched off (privacy modes, sandboxed frames): then nothing is remembered.
function recall() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function remember(id) {
  try {
    localStorage.setItem(STORAGE_KEY, id);
  } catch {
    // not remembered
  }
}

const family = (language) => (language || "").split("-")[0].toLowerCase();

export const direction = (language) => (RTL.has(family(language)) ? "rtl" : "ltr");

function nativeName(voice) {
  if (voice.language_native) return voice.language_native;
  try {
    return new Intl.DisplayNames([voice.language], { type: "language" }).of(voice.language);
  } catch {
    return voice.language || "Other";
  }
}

// "de_DE-thorsten-medium" -> "thorsten · medium · DE"; a speaker of a multi-speaker model gets its name.
function label(voice) {
  if (voice.speaks_as !== voice.id) return `${voice.id} (${voice.speaks_as})`;
  const parts = voice.id.split("#")[0].split("-");
  if (parts.length !== 3) return voice.id;
  const region = (voice.language || "").split("-")[1];
  return [voice.speaker ? `${parts[1]} ${voice.speaker}` : parts[1], parts[2], region].filter(Boolean).join(" · ");
}

// Fills <select> with <optgroup>s per language; returns the voice records by id.
export function fillVoices(select, voices) {
  const groups = new Map();
  for (const voice of voices) {
    const group = voice.speaks_as !== voice.id ? OPENAI_GROUP : nativeName(voice);
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(voice);
  }
  const names = [...groups.keys()].filter((name) => name !== OPENAI_GROUP).sort((a, b) => a.localeCompare(b));
  if (groups.has(OPENAI_GROUP)) names.push(OPENAI_GROUP);
  select.replaceChildren(
    ...names.map((name) => {
      const optgroup = document.createElement("optgroup");
      optgroup.label = name;
      for (const voice of groups.get(name)) {
        const option = new Option(label(voice), voice.id);
        if (voice.language) option.lang = voice.language;
        option.dataset.language = voice.language || "";
        optgroup.append(option);
      }
      return optgroup;
    }),
  );
  const remembered = recall();
  if (remembered && voices.some((voice) => voice.id === remembered)) select.value = remembered;
  return new Map(voices.map((voice) => [voice.id, voice]));
}

// Keeps the text box's language and direction with the chosen voice, and remembers the choice
// (until `signal` aborts).
export function followVoice(select, text, signal) {
  const apply = () => {
    const language = select.selectedOptions[0]?.dataset.language || "";
    text.dir = language ? direction(language) : "auto";
    if (language) text.lang = language;
    else text.removeAttribute("lang");
  };
  select.addEventListener(
    "change",
    () => {
      remember(select.value);
      apply();
    },
    { signal },
  );
  apply();
}

export function sampleText(voice) {
  return SAMPLES[family(voice?.language)] || `${nativeName(voice || {})}.`;
}
