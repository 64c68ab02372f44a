package txlog

// The Delta log's actions, as they appear on one line of a commit file:
// {"add":{…}}, {"remove":{…}}, … Exactly one field of Action is set. Unknown actions and
// unknown fields are ignored on read, as the protocol requires.

// Action is one line of a commit file.
type Action struct {
	Protocol   *Protocol       `json:"protocol,omitempty"`
	MetaData   *Metadata       `json:"metaData,omitempty"`
	Add        *Add            `json:"add,omitempty"`
	Remove     *Remove         `json:"remove,omitempty"`
	CommitInfo *CommitInfo     `json:"commitInfo,omitempty"`
	Txn        *Txn            `json:"txn,omitempty"`
	Domain     *DomainMetadata `json:"domainMetadata,omitempty"`
}

// Protocol names the reader and writer versions (and, at reader 3 / writer 7, features)
// a client needs to read or write the table.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Format is the data file format; always parquet.
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata describes the table: schema, partitioning and properties.
type Metadata struct {
	ID               string            `json:"id"`
	Name             string            `json:"name,omitempty"`
	Description      string            `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
	Configuration    map[string]string `json:"configuration"`
}

// DeletionVector describes rows of a file that are deleted (reader feature deletionVectors).
type DeletionVector struct {
	StorageType    string `json:"storageType"`
	PathOrInlineDv string `json:"pathOrInlineDv"`
	Offset         *int32 `json:"offset,omitempty"`
	SizeInBytes    int32  `json:"sizeInBytes"`
	Cardinality    int64  `json:"cardinality"`
}

// Add makes a data file part of the table.
type Add struct {
	Path             string            `json:"path"`
	PartitionValues  map[string]string `json:"partitionValues"`
	Size             int64             `json:"size"`
	ModificationTime int64             `json:"modificationTime"`
	DataChange       bool              `json:"dataChange"`
	// Stats is the per-file statistics JSON string (see Stats); may be empty.
	Stats          string            `json:"stats,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	DeletionVector *DeletionVector   `json:"deletionVector,omitempty"`
	BaseRowID      *int64            `json:"baseRowId,omitempty"`
	// DefaultRowCommitVersion is kept so rewrites preserve it.
	DefaultRowCommitVersion *int64 `json:"defaultRowCommitVersion,omitempty"`
}

// Remove is a tombstone: the file is no longer part of the table.
type Remove struct {
	Path                 string            `json:"path"`
	DeletionTimestamp    *int64            `json:"deletionTimestamp,omitempty"`
	DataChange           bool              `json:"dataChange"`
	ExtendedFileMetadata *bool             `json:"extendedFileMetadata,omitempty"`
	PartitionValues      map[string]string `json:"partitionValues,omitempty"`
	Size                 *int64            `json:"size,omitempty"`
	Stats                string            `json:"stats,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
	DeletionVector       *DeletionVector   `json:"deletionVector,omitempty"`
}

// CommitInfo is free-form provenance of one commit. The fields below are the ones Spark
// writes and lake_history shows; other fields are ignored on read.
type CommitInfo struct {
	Timestamp           int64             `json:"timestamp"`
	Operation           string            `json:"operation"`
	OperationParameters map[string]any    `json:"operationParameters,omitempty"`
	ReadVersion         *int64            `json:"readVersion,omitempty"`
	IsolationLevel      string            `json:"isolationLevel,omitempty"`
	IsBlindAppend       *bool             `json:"isBlindAppend,omitempty"`
	OperationMetrics    map[string]string `json:"operationMetrics,omitempty"`
	UserName            string            `json:"userName,omitempty"`
	EngineInfo          string            `json:"engineInfo,omitempty"`
	TxnID               string            `json:"txnId,omitempty"`
	// InCommitTimestamp is set when the inCommitTimestamp feature is on; it then is the
	// commit's timestamp for time travel.
	InCommitTimestamp *int64 `json:"inCommitTimestamp,omitempty"`
}

// Txn records the latest version an application (appId) has committed; used for
// idempotent writes.
type Txn struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
}

// DomainMetadata is a named configuration blob (writer feature domainMetadata).
type DomainMetadata struct {
	Domain        string `json:"domain"`
	Configuration string `json:"configuration"`
	Removed       bool   `json:"removed"`
}
