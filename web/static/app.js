// Starts GOV.UK Frontend's components. A file rather than an inline script,
// so that the Content-Security-Policy can forbid inline script entirely.
import { initAll } from '/static/govuk/govuk-frontend.min.js'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initAll()

// An evidence export's page: without JavaScript it reloads itself (a
// refresh in <noscript>); here it asks for the page every 2 seconds and
// swaps in the progress, so that the status line is announced rather than
// the whole page reloaded, until the export has ended.
const job = document.querySelector('[data-export-job][data-running]')
if (job) {
  const poll = async () => {
    try {
      const r = await fetch(job.dataset.exportJob, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      if (r.ok) {
        const next = new DOMParser().parseFromString(await r.text(), 'text/html').querySelector('[data-export-job]')
        if (next) {
          job.replaceChildren(...next.childNodes)
          if (!next.hasAttribute('data-running')) {
            job.removeAttribute('data-running')
            return
          }
        }
      }
    } catch (e) {
      // A lost answer: ask again at the next tick.
    }
    setTimeout(poll, 2000)
  }
  setTimeout(poll, 2000)
}
