// Starts GOV.UK Frontend's components. A file rather than an inline script,
// so that the Content-Security-Policy can forbid inline script entirely.
import { initAll } from '/static/govuk/govuk-frontend.min.js'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initAll()
