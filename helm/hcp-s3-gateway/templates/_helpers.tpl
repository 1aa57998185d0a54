{{- define "hcp-s3-gateway.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hcp-s3-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hcp-s3-gateway.labels" -}}
{{ include "hcp-s3-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hcp-s3-gateway.standalone" -}}
{{- eq .Values.mode "standalone" -}}
{{- end -}}

{{- /*
The ports the chart publishes are those the gateway listens on: s3Port that of `listen`,
adminPort that of `admin_listen` (their defaults when the configuration names none). The
kubelet's probes come to the pod's address, so the admin listener may not be loopback; nor may
the S3 listener in standalone mode, where the Service's traffic comes from outside the pod.
*/ -}}
{{- define "hcp-s3-gateway.checkListeners" -}}
{{- $value := "(\"[^\"\n]*\"|'[^'\n]*')" -}}
{{- if regexMatch "(?m)^\\s*server\\s*[.=]" .Values.config -}}
{{- fail "config: write listen and admin_listen as keys of a [server] table (listen = \"…\"): the chart checks its ports against them" -}}
{{- end -}}
{{- if regexMatch "(?m)^\\s*[\"']?(admin_)?listen[\"']?\\s*=\\s*(\"\"\"|''')" .Values.config -}}
{{- fail "config: write listen and admin_listen as one-line strings (listen = \"…\"): the chart checks its ports against them" -}}
{{- end -}}
{{- $listen := regexFind (printf "(?m)^\\s*[\"']?listen[\"']?\\s*=\\s*%s" $value) .Values.config | regexFind (printf "=\\s*%s" $value) | trimPrefix "=" | trim | trimAll "\"'" | default "127.0.0.1:8080" -}}
{{- $admin := regexFind (printf "(?m)^\\s*[\"']?admin_listen[\"']?\\s*=\\s*%s" $value) .Values.config | regexFind (printf "=\\s*%s" $value) | trimPrefix "=" | trim | trimAll "\"'" | default "127.0.0.1:8081" -}}
{{- if ne (atoi (regexFind "[0-9]+$" $listen)) (int .Values.s3Port) -}}
{{- fail (printf "s3Port (%v) is not the port of [server] listen (%s)" .Values.s3Port $listen) -}}
{{- end -}}
{{- if ne (atoi (regexFind "[0-9]+$" $admin)) (int .Values.adminPort) -}}
{{- fail (printf "adminPort (%v) is not the port of [server] admin_listen (%s)" .Values.adminPort $admin) -}}
{{- end -}}
{{- $loopback := "^(127\\.|\\[::1\\]:|\\[(0+:){7}0*1\\]:|\\[::ffff:127\\.)" -}}
{{- if regexMatch $loopback $admin -}}
{{- fail (printf "[server] admin_listen (%s) is loopback: the kubelet's probes come to the pod's address" $admin) -}}
{{- end -}}
{{- if and (eq .Values.mode "standalone") (regexMatch $loopback $listen) -}}
{{- fail (printf "[server] listen (%s) is loopback: in standalone mode the Service's clients come to the pod's address" $listen) -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") (not (regexMatch $loopback $listen)) -}}
{{- fail (printf "[server] listen (%s) is not loopback: in sidecar mode only the pod's application may reach the S3 listener (see examples/sidecar.yaml)" $listen) -}}
{{- end -}}
{{- end -}}

{{- /*
The configuration is rendered into a ConfigMap, which more roles may read than Secrets: a
secret written in it inline (a string or `{ value = … }`, not `{ file = … }` or `{ env = … }`) is
refused.
*/ -}}
{{- define "hcp-s3-gateway.checkSecrets" -}}
{{- $inline := "(?m)^[^#\n]*\\b[\"']?(password|secret_key|security_token|upload_binding_secret)[\"']?\\s*=\\s*[\"']" -}}
{{- $found := regexFind $inline .Values.config -}}
{{- if $found -}}
{{- fail (printf "config: %s is written inline; give it as { file = \"…\" } (a Secret mounted under secretMountPath) or { env = \"…\" }: the configuration is a ConfigMap" (regexFind "(password|secret_key|security_token|upload_binding_secret)" $found)) -}}
{{- end -}}
{{- /* A secret's source written as { value = "…" } (or password.value, or a [users.password] table) is inline too: `value` is a key of secret sources alone. */ -}}
{{- $valued := "(?m)^[^#\n]*\\b[\"']?value[\"']?\\s*=\\s*[\"']" -}}
{{- if regexMatch $valued .Values.config -}}
{{- fail "config: a secret is written inline as { value = … }; give it as { file = \"…\" } (a Secret mounted under secretMountPath) or { env = \"…\" }: the configuration is a ConfigMap" -}}
{{- end -}}
{{- end -}}
