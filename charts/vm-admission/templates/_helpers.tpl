{{/* The release's base name: "vm-admission" for a release of that name (the names of the kustomize base). */}}
{{- define "vm-admission.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vm-admission.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vm-admission.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vm-admission.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vm-admission.labels" -}}
{{ include "vm-admission.selectorLabels" . }}
app.kubernetes.io/part-of: vm-admission
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "vm-admission.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret with ca.crt, tls.crt and tls.key that the Deployment mounts. */}}
{{- define "vm-admission.tlsSecret" -}}
{{- if and (eq .Values.certificates.mode "provided") .Values.certificates.provided.secretName -}}
{{- .Values.certificates.provided.secretName -}}
{{- else -}}
{{- include "vm-admission.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{- define "vm-admission.clusterView" -}}
{{- if and .Values.config.cluster .Values.config.cluster.watch }}true{{ end -}}
{{- end -}}

{{- define "vm-admission.restrictedPod" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "vm-admission.restrictedContainer" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{/* A CEL single-quoted string literal (webhook/registration.py cel_string). */}}
{{- define "vm-admission.celString" -}}
'{{ . | replace "\\" "\\\\" | replace "'" "\\'" }}'
{{- end -}}

{{/* The node-selector half of the pod matchCondition, from config.cpuManager.nodeSelectorLabels
     (registration._node_selector: labels in sorted order, as `range` visits a map). */}}
{{- define "vm-admission.nodeSelectorCondition" -}}
{{- $cm := .Values.config.cpuManager | default dict -}}
{{- $labels := dict "cpumanager" "true" "kubevirt.io/cpumanager" "true" -}}
{{- if and (hasKey $cm "nodeSelectorLabels") (not (kindIs "invalid" $cm.nodeSelectorLabels)) -}}
{{- $labels = $cm.nodeSelectorLabels -}}
{{- end -}}
{{- if not $labels -}}
false
{{- else -}}
{{- $sel := "object.spec.nodeSelector" -}}
{{- $tests := list -}}
{{- range $k, $v := $labels -}}
{{- $key := include "vm-admission.celString" $k -}}
{{- $tests = append $tests (printf "(%s in %s && %s[%s] == %s)" $key $sel $sel $key (include "vm-admission.celString" (toString $v))) -}}
{{- end -}}
(has(object.spec) && has(object.spec.nodeSelector) && ({{ join " || " $tests }}))
{{- end -}}
{{- end -}}

{{/* One webhook entry; argument: dict "root" $ "short" "pods" "phase" "mutate" "group" "" "resource" "pods"
     "operations" (list ...) "conditions" (list of dict name/expression). */}}
{{- define "vm-admission.webhook" -}}
{{- $root := .root -}}
- name: {{ .short }}.{{ .phase }}.vm-admission.io
  clientConfig:
    service:
      namespace: {{ $root.Release.Namespace }}
      name: {{ include "vm-admission.fullname" $root }}
      path: /{{ .phase }}
      port: 443
    {{- if eq $root.Values.certificates.mode "provided" }}
    caBundle: {{ required "certificates.provided.caBundle is required with certificates.mode provided (the base64 CA that `vm-admission certs` prints)" $root.Values.certificates.provided.caBundle }}
    {{- end }}
  rules:
    - apiGroups: [{{ .group | quote }}]
      apiVersions: ["v1"]
      operations: {{ toJson .operations }}
      resources: [{{ .resource }}]
      scope: Namespaced
  {{- /* Fail closed only for VMI/VM validation; mutation and pods fail open (see docs/operations.md). */}}
  failurePolicy: {{ $root.Values.webhook.failurePolicy | default (ternary "Fail" "Ignore" (and (eq .phase "validate") (ne .resource "pods"))) }}
  matchPolicy: Equivalent
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values:
          - kube-system
          {{- if ne $root.Release.Namespace "kube-system" }}
          - {{ $root.Release.Namespace }}
          {{- end }}
  sideEffects: None
  timeoutSeconds: 5
  admissionReviewVersions: ["v1"]
  {{- if eq .phase "mutate" }}
  reinvocationPolicy: IfNeeded
  {{- end }}
  {{- with .conditions }}
  matchConditions:
    {{- range . }}
    - name: {{ .name }}
      expression: {{ toJson .expression }}
    {{- end }}
  {{- end }}
{{- end -}}

{{- define "vm-admission.webhookMetadata" -}}
metadata:
  name: {{ include "vm-admission.fullname" . }}
  labels:
    {{- include "vm-admission.labels" . | nindent 4 }}
    app.kubernetes.io/component: admission-webhook
  {{- if eq .Values.certificates.mode "certManager" }}
  annotations:
    # cert-manager's CA injector copies ca.crt of this Certificate's Secret into every webhook's caBundle
    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "vm-admission.fullname" . }}-tls
  {{- end }}
{{- end -}}
