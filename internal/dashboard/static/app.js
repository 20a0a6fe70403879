// recledger dashboard: live updates. The pages are complete without this
// script; with it, a page that shows live data follows the API's event
// stream and, when a callback that concerns it arrives, fetches itself
// again and swaps in the parts marked data-live. No framework, no CDN.
//
// Times: the server writes every time in UTC under the one rule
// ("2006-01-02 15:04:05 -07:00", package display) inside
// <time datetime=... data-local>; this script rewrites them in the
// browser's zone under the same rule, so the zone shows either way. The
// UTC text stays as the element's title.
(function () {
  'use strict';
  var body = document.body;

  function pad(n) {
    return (n < 10 ? '0' : '') + n;
  }

  // localTime is display.Time in the browser's zone.
  function localTime(d) {
    var off = -d.getTimezoneOffset();
    var sign = off < 0 ? '-' : '+';
    off = Math.abs(off);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + ' ' +
      sign + pad(Math.floor(off / 60)) + ':' + pad(off % 60);
  }

  function localize(root) {
    root.querySelectorAll('time[data-local]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (isNaN(d.getTime()) || el.dataset.local === 'done') {
        return;
      }
      el.title = el.textContent;
      el.textContent = localTime(d);
      el.dataset.local = 'done';
    });
  }
  localize(document);

  // On a phone the filter form would fill the screen before the list: it
  // starts folded there (without this script it is simply open).
  var filters = document.querySelector('details.filter-box');
  if (filters && window.matchMedia && window.matchMedia('(max-width: 40rem)').matches) {
    filters.open = false;
  }

  if (body.dataset.live !== 'on' || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var status = document.getElementById('live-status');
  var recordId = body.dataset.recordId || '';
  var timer = null;
  var busy = false;
  var again = false;
  var stream = null;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  // A region keeps what the reader is doing in it: open details stay
  // open, and a region with a playing player is left alone.
  function swap(region, fresh) {
    if (region.innerHTML === fresh.innerHTML) {
      return;
    }
    var media = region.querySelectorAll('video, audio');
    for (var i = 0; i < media.length; i++) {
      if (!media[i].paused) {
        return;
      }
    }
    var open = {};
    region.querySelectorAll('details[open][id]').forEach(function (d) { open[d.id] = true; });
    var before = {};
    region.querySelectorAll('[data-record-id], [data-seq]').forEach(function (el) {
      before[el.dataset.recordId || el.dataset.seq] = el.textContent;
    });
    region.replaceChildren.apply(region, Array.prototype.slice.call(document.adoptNode(fresh).childNodes));
    region.querySelectorAll('details[id]').forEach(function (d) {
      if (open[d.id]) { d.open = true; }
    });
    // Rows that are new or changed flash once.
    region.querySelectorAll('tr[data-record-id], tr[data-seq]').forEach(function (el) {
      var key = el.dataset.recordId || el.dataset.seq;
      if (before[key] !== el.textContent) {
        el.classList.add('flash');
      }
    });
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, { headers: { 'X-Recledger-Live': '1' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (resp) {
        if (resp.status === 401) {
          say('Your session ended: reload the page to log in again.');
          if (stream) { stream.close(); }
          return null;
        }
        if (!resp.ok) {
          throw new Error('status ' + resp.status);
        }
        return resp.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        localize(doc); // before comparing, so unchanged rows stay unchanged
        document.querySelectorAll('[data-live]:not(body)').forEach(function (region) {
          var fresh = doc.querySelector('[data-live="' + region.dataset.live + '"]');
          if (fresh) { swap(region, fresh); }
        });
        say('Live · updated ' + localTime(new Date()));
        body.dataset.updated = String(Date.now());
      })
      .catch(function () {
        say('Live · the last update failed; the next callback retries.');
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  // Callbacks come in bursts: one refresh per half second at most.
  function schedule() {
    if (timer === null) {
      timer = setTimeout(function () { timer = null; refresh(); }, 500);
    }
  }

  var url = body.dataset.stream + '?after=' + encodeURIComponent(body.dataset.lastSeq || '0');
  stream = new EventSource(url, { withCredentials: true });
  stream.addEventListener('open', function () { say('Live · following callbacks as they arrive'); });
  stream.addEventListener('error', function () { say('Live · reconnecting to the event stream…'); });
  stream.addEventListener('callback', function (msg) {
    var ev;
    try { ev = JSON.parse(msg.data); } catch (e) { return; }
    if (recordId && ev.recordId !== recordId) {
      return;
    }
    schedule();
  });
})();
