#!/bin/sh
# Drives a Hydra started with samples/hydra/hydra.yml in front of `make run`
# (the sample pipeline and data), headless: this script plays the client and
# the login and consent app through Hydra's admin API. Needs curl and jq.
#
#   samples/hydra/walkthrough.sh
#
# Env: HYDRA_PUBLIC, HYDRA_ADMIN (default http://127.0.0.1:4444, :4445),
#      CLAIMSMITH_URL (default http://127.0.0.1:8080) and
#      CLAIMSMITH_DEV_BEARER_KEY (make run's, by default).
set -eu
PUBLIC=${HYDRA_PUBLIC:-http://127.0.0.1:4444}
ADMIN=${HYDRA_ADMIN:-http://127.0.0.1:4445}
CS=${CLAIMSMITH_URL:-http://127.0.0.1:8080}
KEY=${CLAIMSMITH_DEV_BEARER_KEY:-dev-native-bearer-key}
CB=http://127.0.0.1:9/callback
NS=https://example.com/
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT

# claims prints a JWT's payload.
claims() { jq -R 'split(".")[1] | gsub("-";"+") | gsub("_";"/") | @base64d | fromjson'; }
# get follows nothing and prints where Hydra redirects to.
get() { curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$1"; }
put() { curl -sf -X PUT -H 'Content-Type: application/json' -d "$2" "$1" | jq -r .redirect_to; }
param() { printf '%s\n' "$1" | tr '?&' '\n\n' | sed -n "s/^$2=//p" | head -n1; }

i=0
until curl -sf "$ADMIN/health/ready" >/dev/null; do
	i=$((i + 1)); [ $i -lt 300 ] || { echo "hydra is not ready at $ADMIN" >&2; exit 1; }; sleep 0.2
done

# The sample data's portal-client, registered in Hydra for both grants.
curl -s -o /dev/null -X DELETE "$ADMIN/admin/clients/portal-client"
curl -sf -o /dev/null -H 'Content-Type: application/json' "$ADMIN/admin/clients" -d '{
  "client_id": "portal-client", "client_secret": "portal-secret-0123456789",
  "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
  "response_types": ["code"], "scope": "openid offline email",
  "redirect_uris": ["'$CB'"], "token_endpoint_auth_method": "client_secret_basic"}'

echo "== client_credentials: portal-client logs in as itself (its role: samples/data)"
at=$(curl -sf -u portal-client:portal-secret-0123456789 -d grant_type=client_credentials "$PUBLIC/oauth2/token" | jq -r .access_token)
printf '%s' "$at" | claims | jq -c --arg ns "$NS" '{sub, roles: .ext[$ns + "roles"], permissions: .ext[$ns + "permissions"]}'

# login USER EMAIL_VERIFIED: the authorization-code flow. The consent step
# puts email and email_verified into the ID token's session (the sample
# pipeline's verified-email rule reads email_verified) and asks claimsmith
# for the decision first, so a deny reaches the client as error_description
# (Hydra v2.3.0 drops the body of a token hook's 403: at the token endpoint
# the client would only see access_denied).
login() {
	user=$1 verified=$2 email="${1#auth0|}@example.com"
	loc=$(get "$PUBLIC/oauth2/auth?client_id=portal-client&response_type=code&scope=openid+email&redirect_uri=$CB&state=state-0123456789")
	loc=$(put "$ADMIN/admin/oauth2/auth/requests/login/accept?login_challenge=$(param "$loc" login_challenge)" "{\"subject\":\"$user\"}")
	loc=$(get "$loc")
	consent=$(param "$loc" consent_challenge)
	decision=$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$CS/hooks/v1/post-login" \
		-d "{\"user\":{\"user_id\":\"$user\",\"email\":\"$email\",\"email_verified\":$verified},\"client\":{\"client_id\":\"portal-client\"}}" | jq -c .decision)
	if [ "$(printf '%s' "$decision" | jq .allowed)" != true ]; then
		loc=$(put "$ADMIN/admin/oauth2/auth/requests/consent/reject?consent_challenge=$consent" \
			"$(printf '%s' "$decision" | jq -c '{error: "access_denied", error_description: .reason, error_hint: ("denied by rule " + .rule), status_code: 403}')")
		loc=$(get "$loc")
		printf '%s\n' "$loc" | sed -n 's/^[^?]*?//p' | tr '&' '\n' | grep '^error' | sed 's/+/ /g; s/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g' | while IFS= read -r l; do printf '%b\n' "$l"; done
		return 0
	fi
	loc=$(put "$ADMIN/admin/oauth2/auth/requests/consent/accept?consent_challenge=$consent" \
		"{\"grant_scope\":[\"openid\",\"email\"],\"session\":{\"id_token\":{\"email\":\"$email\",\"email_verified\":$verified}}}")
	loc=$(get "$loc")
	tok=$(curl -sf -u portal-client:portal-secret-0123456789 -d grant_type=authorization_code -d "code=$(param "$loc" code)" \
		--data-urlencode "redirect_uri=$CB" "$PUBLIC/oauth2/token")
	printf '%s' "$tok" | jq -r .id_token | claims | jq -c --arg ns "$NS" '{sub, email, email_verified, groups: .[$ns + "groups"], roles: .[$ns + "roles"]}'
}

echo "== authorization_code: auth0|alice, email verified"
login 'auth0|alice' true
echo "== authorization_code: auth0|bob, email not verified"
login 'auth0|bob' false
