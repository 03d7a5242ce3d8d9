/** A service's image as the registry knows it. */
export interface ServiceImage {
  service: string;
  /** Bare image name (the folder name unless enssib.yaml says otherwise). */
  name: string;
  /** Content tag derived from the build context. */
  tag: string;
  /** registry-host:port/name:tag */
  reference: string;
  /** sha256:… once pushed or found in the registry; absent in a client dry run. */
  digest?: string;
  /** What happened: built and pushed, already in the registry, or only planned. */
  status: 'pushed' | 'present' | 'built' | 'planned';
  /** One line saying why (e.g. "already in the registry: build and push skipped"). */
  note?: string;
  /** The local image ID (sha256:…) when the engine built or had it. */
  imageId?: string;
  /** The git commit recorded as the image's org.opencontainers.image.revision label. */
  commit?: string;
}


/** Builds or finds the images of some services: the Images use case, reached through the Context. */
export type EnsureImages = (services: string[], opts: { build: boolean; push: boolean; allowInsecureEngine?: boolean }) => Promise<ServiceImage[]>;
