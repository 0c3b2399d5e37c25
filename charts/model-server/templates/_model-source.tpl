{{/*
How the SavedModel reaches /models/<name>/<version>/ (global.model.source.type). Only the pinned
version is ever visible to TF Serving, so its default "serve the highest version" policy serves
exactly global.model.version, and a version change alters the pod template (Kubernetes rolls it).
  image: the model image's own loader copies /model into an emptyDir (init container), or, opt-in
         on Kubernetes >= 1.33, the image is mounted directly as an OCI image volume;
  url:   the model-loader downloads the .tar.gz, checks its sha256, unpacks into an emptyDir;
  pvc:   the claim's <name>/<version> folder is mounted read-only (subPath).
*/}}
{{- define "model-server.useImageVolume" -}}
{{- $source := .Values.global.model.source }}
{{- if and (eq $source.type "image") $source.image.useImageVolume (semverCompare ">=1.33.0-0" .Capabilities.KubeVersion.Version) }}true{{ end }}
{{- end }}

{{- define "model-server.modelImage" -}}
{{- $image := .Values.global.model.source.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default (toString .Values.global.model.version) (toString $image.tag)) }}
{{- end }}
{{- end }}

{{- define "model-server.loaderImage" -}}
{{- $image := .Values.global.loaderImage }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (toString $image.tag) }}
{{- end }}
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
  subPath: {{ printf "%s/%s" .Values.global.model.name (toString .Values.global.model.version) }}
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
    sizeLimit: {{ $source.sizeLimit }}
{{- end }}
{{- end }}
