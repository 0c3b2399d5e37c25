{{/*
How the SavedModel reaches /models/<name>/<version>/ (global.model.source.type). Only the pinned
version is ever visible to TF Serving, so its default "serve the highest version" policy serves
exactly global.model.version, and a version change alters the pod template (Kubernetes rolls it).
  image: the model image's own loader copies /model into an emptyDir (init container), or, when
         useImageVolume is true (Kubernetes >= 1.35, or 1.33-1.34 with the ImageVolume feature
         gate on), the image is mounted directly as an OCI image volume;
  url:   the model-loader downloads the .tar.gz beside the version directory, checks its sha256,
         unpacks it there (the emptyDir holds archive + model at once);
  pvc:   the claim's <name>/<version> folder is mounted read-only (subPath).
*/}}
{{/* An explicit value, never the render's guess of the cluster's version: `helm template`
     without --kube-version (GitOps tools) assumes Helm's own default version. */}}
{{- define "model-server.useImageVolume" -}}
{{- $source := .Values.global.model.source }}
{{- if and (eq $source.type "image") $source.image.useImageVolume }}true{{ end }}
{{- end }}

{{/* What the model emptyDir may hold: the model (sizeLimit), or in the url mode the archive
     and the unpacked model together (twice sizeLimit). Empty for the pvc source. */}}
{{- define "model-server.modelStorage" -}}
{{- $source := .Values.global.model.source }}
{{- if and (ne $source.type "pvc") (not (include "model-server.useImageVolume" .)) }}
{{- $size := toString $source.sizeLimit }}
{{- if eq $source.type "url" }}
{{- $parts := regexFindAll "^[0-9.]+|[A-Za-z]+$" $size -1 }}
{{- printf "%s%s" (include "common.number" (mulf (first $parts | float64) 2)) (rest $parts | join "") }}
{{- else }}
{{- $size }}
{{- end }}
{{- end }}
{{- end }}

{{- define "model-server.modelImage" -}}
{{- include "common.image" (dict "image" .Values.global.model.source.image "tag" (include "model-server.version" .) "global" .Values.global "name" "model" "path" "global.model.source.image") }}
{{- end }}

{{- define "model-server.loaderImage" -}}
{{- include "common.image" (dict "image" .Values.global.loaderImage "tag" "" "global" .Values.global "name" "model-loader" "path" "global.loaderImage") }}
{{- end }}

{{- define "model-server.pvcName" -}}
{{- default (printf "%s-models" (include "model-server.fullname" .)) .Values.global.model.source.pvc.existingClaim }}
{{- end }}

{{- define "model-server.modelInitContainers" -}}
{{- $source := .Values.global.model.source }}
{{- if and (ne $source.type "pvc") (not (include "model-server.useImageVolume" .)) }}
- name: model-loader
  {{- if eq $source.type "url" }}
  image: {{ include "model-server.loaderImage" . | quote }}
  imagePullPolicy: {{ .Values.global.loaderImage.pullPolicy }}
  args: ["fetch", "--url", {{ $source.url.url | quote }}, "--sha256", {{ $source.url.sha256 | quote }}, "--dest", {{ include "model-server.modelDir" . | quote }}]
  {{- else }}
  image: {{ include "model-server.modelImage" . | quote }}
  imagePullPolicy: {{ $source.image.pullPolicy }}
  args: ["copy", "--src", "/model", "--dest", {{ include "model-server.modelDir" . | quote }}]
  {{- end }}
  # A failed download or checksum shows in `kubectl describe pod` / the pod's status as the
  # loader's last log lines, not just an exit code.
  terminationMessagePolicy: FallbackToLogsOnError
  resources:
    {{- toYaml .Values.loaderResources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.global.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: models
      mountPath: /models
    - name: tmp
      mountPath: /tmp
{{- end }}
{{- end }}

{{- define "model-server.modelVolumeMount" -}}
{{- $source := .Values.global.model.source }}
{{- if eq $source.type "pvc" }}
- name: models
  mountPath: {{ include "model-server.modelDir" . }}
  subPath: {{ printf "%s/%s" .Values.global.model.name (include "model-server.version" .) }}
  readOnly: true
{{- else if include "model-server.useImageVolume" . }}
- name: models
  mountPath: {{ include "model-server.modelDir" . }}
  subPath: model
  readOnly: true
{{- else }}
- name: models
  mountPath: /models
  readOnly: true
{{- end }}
{{- end }}

{{- define "model-server.modelVolume" -}}
{{- $source := .Values.global.model.source }}
{{- if eq $source.type "pvc" }}
- name: models
  persistentVolumeClaim:
    claimName: {{ include "model-server.pvcName" . }}
    readOnly: true
{{- else if include "model-server.useImageVolume" . }}
- name: models
  image:
    reference: {{ include "model-server.modelImage" . | quote }}
    pullPolicy: {{ $source.image.pullPolicy }}
{{- else }}
- name: models
  emptyDir:
    sizeLimit: {{ include "model-server.modelStorage" . }}
{{- end }}
{{- end }}
