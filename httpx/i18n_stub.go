package httpx

var catalogDE, catalogES, catalogFR, catalogNL, catalogPTBR, catalogZHCN, catalogJA = clone("de"), clone("es"), clone("fr"), clone("nl"), clone("pt-BR"), clone("zh-CN"), clone("ja")

func clone(tag string) *catalog { c := *catalogEN; c.tag = tag; return &c }
