#!/bin/sh
# Opt-in end-to-end test of `enssib service deploy` against a REAL Kubernetes
# cluster (never run by `npm test`):
#
#   ENSSIB_E2E_KUBECONFIG=~/.kube/test-cluster npm run test:e2e
#
# Optional: ENSSIB_E2E_CONTEXT (kubeconfig context), ENSSIB_E2E_IMAGE (an image
# the cluster can pull and that keeps running; default registry.k8s.io/pause:3.10).
# It creates a namespace enssib-e2e-<random>, deploys into it, and deletes it.
set -eu
if [ -z "${ENSSIB_E2E_KUBECONFIG:-}" ]; then
  echo "test:e2e: set ENSSIB_E2E_KUBECONFIG to the kubeconfig of a test cluster (the test creates and deletes a namespace there)" >&2
  exit 2
fi
if [ ! -r "$ENSSIB_E2E_KUBECONFIG" ]; then
  echo "test:e2e: cannot read $ENSSIB_E2E_KUBECONFIG" >&2
  exit 2
fi
cd "$(dirname "$0")/../.."
npm run build
exec npx vitest run --config test/e2e/vitest.config.ts "$@"
