// The reader's control ({% speech_reader %}'s markup): Listen/Pause, a sentence back and forward,
// speed, time left, "back to reading"; the keys; and a small bar fixed to the window's edge while the
// control itself is scrolled out of view during reading. Knows nothing of speech: it calls `actions`
// and shows what `render()` is given.
//   actions: {toggle(), back(), forward(), stop(), follow(), speed(value)}

const KEYS = new Set([" ", "Spacebar", "ArrowLeft", "ArrowRight", "Escape"]);

export function mountControls(root, actions, signal) {
  const $ = (selector) => root.querySelector(selector);
  const play = $(".sr-play");
  const label = $(".sr-play-label");
  const back = $(".sr-back");
  const forward = $(".sr-forward");
  const stop = $(".sr-stop");
  const follow = $(".sr-follow");
  const speed = $(".sr-speed");
  const time = $(".sr-time");
  const status = $(".sr-status");
  const bar = $(".sr-bar");
  const listen = label.textContent.trim();
  const rtl = () => getComputedStyle(root).direction === "rtl";
  let state = "idle";
  let outOfView = false;

  const on = (element, type, fn) => element.addEventListener(type, fn, { signal });
  on(play, "click", () => actions.toggle());
  on(back, "click", () => actions.back());
  on(forward, "click", () => actions.forward());
  on(stop, "click", () => actions.stop());
  on(follow, "click", () => actions.follow());
  on(speed, "change", () => actions.speed(Number(speed.value)));
  // Space pauses and resumes, the arrows go a sentence back or forward (in the reading direction),
  // Escape stops: anywhere in the control but the speed list, which keeps its own keys.
  const handled = (event) =>
    KEYS.has(event.key) && !event.altKey && !event.ctrlKey && !event.metaKey && event.target !== speed;
  on(root, "keydown", (event) => {
    if (!handled(event)) return;
    event.preventDefault(); // no scrolling, and no click of the focused button on top
    if (event.repeat) return;
    if (event.key === "Escape") actions.stop();
    else if (event.key === "ArrowLeft") (rtl() ? actions.forward : actions.back)();
    else if (event.key === "ArrowRight") (rtl() ? actions.back : actions.forward)();
    else actions.toggle();
  });
  on(root, "keyup", (event) => {
    if (handled(event)) event.preventDefault(); // a button clicks on Space's keyup
  });

  // While reading, the bar stays at hand when the control scrolls out of view.
  const place = () => {
    const floating = outOfView && state !== "idle";
    if (floating && !root.classList.contains("is-floating")) root.style.minHeight = `${root.offsetHeight}px`;
    root.classList.toggle("is-floating", floating);
    if (!floating) root.style.minHeight = "";
  };
  const observer =
    typeof IntersectionObserver === "function"
      ? new IntersectionObserver(([entry]) => {
          outOfView = !entry.isIntersecting;
          place();
        })
      : null;
  observer?.observe(root);
  signal.addEventListener("abort", () => {
    observer?.disconnect();
    root.classList.remove("is-floating", "is-reading", "is-paused");
    root.style.minHeight = "";
  });

  return {
    // idle | starting | playing | paused
    render(next, { remembered = false } = {}) {
      state = next;
      const active = state !== "idle";
      const playing = state === "playing" || state === "starting";
      root.classList.toggle("is-reading", active);
      root.classList.toggle("is-paused", state === "paused");
      label.textContent = playing ? "Pause" : state === "paused" ? "Resume" : remembered ? "Continue" : listen;
      play.setAttribute("aria-pressed", String(playing));
      back.disabled = forward.disabled = !active;
      stop.hidden = !active;
      if (!active) follow.hidden = true;
      bar.setAttribute("aria-busy", String(state === "starting"));
      place();
    },
    time(seconds) {
      time.textContent = seconds === null || seconds === undefined ? "" : `${formatTime(seconds)} left`;
    },
    following(yes) {
      follow.hidden = yes || state === "idle";
    },
    say(message, isError = false) {
      status.textContent = message;
      status.classList.toggle("is-error", isError);
    },
    speed(value) {
      if (value !== null && value !== undefined) speed.value = String(value);
      return Number(speed.value);
    },
  };
}

export function formatTime(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
